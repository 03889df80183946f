//! A corpus of malformed JPEGs, built from a real frame: each is answered
//! `invalid_frame` (close 1007) and the server keeps serving.

use streamhost_tests::*;

/// Index of the first byte after the SOS segment header (the entropy-coded data).
fn entropy_start(jpeg: &[u8]) -> usize {
    let sos = jpeg
        .windows(2)
        .position(|w| w == [0xFF, 0xDA])
        .expect("SOS marker");
    let len = usize::from(jpeg[sos + 2]) << 8 | usize::from(jpeg[sos + 3]);
    sos + 2 + len
}

fn with_eoi(mut body: Vec<u8>) -> Vec<u8> {
    body.extend_from_slice(&[0xFF, 0xD9]);
    body
}

/// (name, bytes): every one passes the O(1) marker check and fails in the decoder.
fn corpus() -> Vec<(&'static str, Vec<u8>)> {
    let good = gradient_jpeg(320, 240);
    let data = entropy_start(&good);
    let body = &good[..good.len() - 2];
    let mut out = Vec::new();
    // Truncated mid-scan (a classic: libjpeg would pad with grey and only warn).
    out.push((
        "truncated",
        with_eoi(body[..data + (body.len() - data) / 3].to_vec()),
    ));
    // Truncated inside the headers.
    out.push(("truncated headers", with_eoi(good[..data / 2].to_vec())));
    // Entropy data replaced by a run of 0xFF 0x00-free garbage with embedded markers.
    let mut corrupt = body.to_vec();
    for (i, b) in corrupt[data + 10..].iter_mut().enumerate() {
        if i % 7 == 0 {
            *b = 0xFF;
        } else if i % 7 == 1 {
            *b = 0xD3; // RST3 out of sequence
        }
    }
    out.push(("corrupted entropy data", with_eoi(corrupt)));
    // The first Huffman table's DHT marker turned into an undefined marker code.
    let mut bad_marker = good.clone();
    let dht = bad_marker
        .windows(2)
        .position(|w| w == [0xFF, 0xC4])
        .expect("DHT marker");
    bad_marker[dht + 1] = 0x4E;
    out.push(("undefined marker", bad_marker));
    // The SOF segment (baseline or progressive) claims 65000x65000 pixels: a decompression bomb.
    let mut bomb = good.clone();
    let sof = bomb
        .windows(2)
        .position(|w| w[0] == 0xFF && matches!(w[1], 0xC0..=0xC2))
        .expect("SOF marker");
    bomb[sof + 5..sof + 9].copy_from_slice(&[0xFD, 0xE8, 0xFD, 0xE8]);
    out.push(("declared 65000x65000", bomb));
    // The SOF claims zero width.
    let mut zero = good.clone();
    zero[sof + 7..sof + 9].copy_from_slice(&[0, 0]);
    out.push(("zero width", zero));
    // Random bytes between a valid SOI and EOI.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut random = vec![0xFF, 0xD8];
    random.extend((0..4096).map(|_| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 24) as u8
    }));
    out.push(("random bytes", with_eoi(random)));
    // SOI, EOI and nothing else; then a header with no scan at all.
    out.push(("empty", vec![0xFF, 0xD8, 0xFF, 0xD9]));
    out.push(("no scan", with_eoi(good[..data - 14].to_vec())));
    out
}

#[tokio::test]
async fn every_malformed_jpeg_is_invalid_frame_and_the_server_stays_healthy() {
    let server = TestServer::start(&[("frame_info", &shipped_pipeline("frame_info"))]).await;
    let mut neighbour = server.connect("frame_info").await;
    for (i, (name, bytes)) in corpus().into_iter().enumerate() {
        let mut client = server.connect("frame_info").await;
        let reply = client.roundtrip(bytes).await;
        assert_eq!(reply["error"], "invalid_frame", "{name}: {reply}");
        assert!(
            reply["detail"]
                .as_str()
                .unwrap()
                .starts_with("Not a valid JPEG image"),
            "{name}: {reply}"
        );
        client.expect_close(1007).await;
        let ok = neighbour.roundtrip(gradient_jpeg(64, 48)).await;
        assert_eq!(ok["frame_index"], i as u64 + 1, "after {name}: {ok}");
        assert_eq!(ok["result"]["width"], 64, "after {name}: {ok}");
    }
    let health = server.get_json("/health").await;
    assert_eq!(health["status"], "ok", "{health}");
}

#[tokio::test]
async fn a_real_frame_with_extraneous_bytes_before_a_marker_still_decodes() {
    // Cameras often leave padding before a marker; libjpeg warns and the image is intact.
    let good = gradient_jpeg(64, 48);
    let sos = good.windows(2).position(|w| w == [0xFF, 0xDA]).unwrap();
    let mut padded = good[..sos].to_vec();
    padded.extend_from_slice(&[0x00, 0x00, 0x00]);
    padded.extend_from_slice(&good[sos..]);
    let server = TestServer::start(&[("frame_info", &shipped_pipeline("frame_info"))]).await;
    let mut client = server.connect("frame_info").await;
    let reply = client.roundtrip(padded).await;
    assert_eq!(reply["result"]["width"], 64, "{reply}");
}
