#![allow(clippy::unwrap_used)]
use crate::{db_postprocess, Meta, Params};

#[test]
fn golden_tmp() {
    let dir = std::env::var("GOLDEN").unwrap_or("/tmp/golden".into());
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let p = e.unwrap().path();
            (p.extension().map(|x| x == "bin").unwrap_or(false)).then_some(p)
        })
        .collect();
    names.sort();
    let (mut ok, mut bad, mut boxes_total, mut box_mismatch) = (0, 0, 0, 0);
    let mut stats = [0usize; 5];
    let mut extra = 0usize;
    for p in names {
        let bytes = std::fs::read(&p).unwrap();
        let u = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().unwrap());
        let f = |i: usize| f32::from_le_bytes(bytes[i..i + 4].try_into().unwrap());
        let (w, h, sx, sy, sw, sh) = (u(0) as usize, u(4) as usize, f(8), f(12), u(16), u(20));
        let prob: Vec<f32> = bytes[24..].iter().map(|&b| b as f32 / 255.0).collect();
        let j: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(p.with_extension("json")).unwrap())
                .unwrap();
        let mut params = Params::default();
        let kw = &j["params"];
        if let Some(v) = kw["thresh"].as_f64() {
            params.thresh = v as f32;
        }
        if let Some(v) = kw["box_thresh"].as_f64() {
            params.box_thresh = v;
        }
        if let Some(v) = kw["unclip_ratio"].as_f64() {
            params.unclip_ratio = v;
        }
        if let Some(v) = kw["max_candidates"].as_u64() {
            params.max_candidates = v as usize;
        }
        if let Some(v) = kw["use_dilation"].as_bool() {
            params.use_dilation = v;
        }
        let meta = Meta {
            src_w: sw as f64,
            src_h: sh as f64,
            scale_x: sx as f64,
            scale_y: sy as f64,
            pad_x: 0.0,
            pad_y: 0.0,
        };
        let got = db_postprocess(&prob, w, h, &meta, &params);
        let exp = j["boxes"].as_array().unwrap();
        boxes_total += exp.len();
        let got_v: Vec<(Vec<Vec<i64>>, f64)> = got
            .iter()
            .map(|b| (b.points.iter().map(|p| p.to_vec()).collect(), b.score))
            .collect();
        let exp_v: Vec<(Vec<Vec<i64>>, f64)> = exp
            .iter()
            .map(|b| {
                (
                    serde_json::from_value(b["points"].clone()).unwrap(),
                    b["score"].as_f64().unwrap(),
                )
            })
            .collect();
        let same = got_v.len() == exp_v.len()
            && got_v
                .iter()
                .zip(&exp_v)
                .all(|(a, b)| a.0 == b.0 && (a.1 - b.1).abs() < 1e-6);
        for e in &exp_v {
            let best = got_v
                .iter()
                .map(|g| {
                    (
                        g.0.iter()
                            .flatten()
                            .zip(e.0.iter().flatten())
                            .map(|(a, b)| (a - b).abs())
                            .max()
                            .unwrap_or(0),
                        (g.1 - e.1).abs(),
                    )
                })
                .min_by(|a, b| a.partial_cmp(b).unwrap());
            match best {
                Some((0, sd)) if sd < 1e-6 => stats[0] += 1,
                Some((0, _)) => stats[1] += 1,
                Some((1, _)) => stats[2] += 1,
                Some((2, _)) => stats[3] += 1,
                _ => stats[4] += 1,
            }
        }
        extra += got_v.len().saturating_sub(exp_v.len());
        if same {
            ok += 1
        } else {
            bad += 1;
            let gs: std::collections::BTreeSet<_> = got_v.iter().map(|g| g.0.clone()).collect();
            let es: std::collections::BTreeSet<_> = exp_v.iter().map(|g| g.0.clone()).collect();
            box_mismatch += gs.symmetric_difference(&es).count();
            if std::env::var("SHOW").is_ok() {
                println!(
                    "MISMATCH {} ({}x{})\n  got {:?}\n  exp {:?}",
                    p.display(),
                    w,
                    h,
                    got_v,
                    exp_v
                );
            }
        }
    }
    println!("per expected box: exact {}, same points score differs {}, off by 1px {}, 2px {}, worse/missing {}; extra boxes {extra}", stats[0], stats[1], stats[2], stats[3], stats[4]);
    println!("golden: {ok} ok, {bad} differ, {boxes_total} expected boxes, {box_mismatch} boxes in symmetric difference");
    assert_eq!(bad, 0);
}

#[test]
fn debug_case() {
    let Ok(p) = std::env::var("CASE") else { return };
    let bytes = std::fs::read(&p).unwrap();
    let u = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().unwrap());
    let (w, h) = (u(0) as usize, u(4) as usize);
    let prob: Vec<f32> = bytes[24..].iter().map(|&b| b as f32 / 255.0).collect();
    let dil = std::env::var("NODIL").is_err();
    let bm = crate::contours::binarize(&prob, w, h, 0.3, dil);
    let c = crate::contours::candidates(&bm, w, h, 1000);
    let mut scratch = Vec::new();
    for i in 0..c.len() {
        let pts: Vec<[i64; 2]> = c
            .points(i)
            .iter()
            .map(|p| [p[0] as i64, p[1] as i64])
            .collect();
        let hull = crate::geom::convex_hull(&pts);
        let rect = crate::geom::min_area_rect(&hull);
        let quad = crate::geom::mini_box(&rect);
        let score = crate::score::box_score_fast(&prob, w, h, &quad, &mut scratch);
        let (a, per) = crate::unclip::area_and_perimeter(&quad);
        let grown = crate::unclip::offset_round(&quad, a * 1.6 / per);
        let r2 = crate::geom::min_area_rect(&crate::geom::convex_hull(&grown));
        println!(
            "{i}: n={} side={:.4} quad={:?} score={:.6} d={:.4} grown={:?} box2={:?} side2={:.4}",
            pts.len(),
            rect.min_side(),
            quad.map(|p| [(p[0] * 1e3).round() / 1e3, (p[1] * 1e3).round() / 1e3]),
            score,
            a * 1.6 / per,
            grown,
            crate::geom::mini_box(&r2)
                .map(|p| [(p[0] * 1e3).round() / 1e3, (p[1] * 1e3).round() / 1e3]),
            r2.min_side()
        );
    }
}

#[test]
fn dbg_offset() {
    let q = [[19.0, 68.0], [20.0, 69.0], [19.0, 70.0], [18.0, 69.0]];
    println!("OFF {:?}", crate::unclip::offset_round(&q, 0.5657));
    let q = [[1.7, 1.7], [10.9, 1.2], [10.6, 5.99], [1.2, 5.5]];
    println!("OFF2 {:?}", crate::unclip::offset_round(&q, 2.0));
}
