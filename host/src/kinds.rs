//! The kinds of value that travel a pipeline's edges, and the signatures
//! that type every edge before a frame is run.
//!
//! A node's [`Signature`] says which kinds it takes (on any of its inputs)
//! and which it may give. Native kinds declare theirs in code
//! (`nodes::NativeKind::signature`); a `streamhost:node@0.2.0` component
//! declares its own through its `describe` export, read once when the
//! component loads; a 0.1.0 component declares nothing, so its edges are
//! unchecked unless its manifest entry narrows them (`takes`, `gives`), which
//! any manifest may do for any node but never to widen what the node
//! declares. The check itself, [`check_edge`], wants every kind an upstream
//! node may give to be one the downstream node takes: a node that gives
//! `detections` or `json` cannot feed one that takes only `json`, because
//! some frame would fail. Kinds are a set in one byte: four public kinds plus
//! the host-only `frame` (the client's JPEG bytes, which only `jpeg_decode`
//! takes).

use std::fmt;

/// One kind of edge value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The client's frame, JPEG bytes: the pipeline's source.
    Frame,
    Image,
    Tensors,
    Detections,
    Json,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Frame,
        Kind::Image,
        Kind::Tensors,
        Kind::Detections,
        Kind::Json,
    ];

    /// The word manifests, `/pipelines` and load errors use.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Frame => "frame",
            Kind::Image => "image",
            Kind::Tensors => "tensors",
            Kind::Detections => "detections",
            Kind::Json => "json",
        }
    }

    /// A kind a manifest may name in `takes`/`gives` (not `frame`).
    pub fn from_manifest_name(name: &str) -> Option<Kind> {
        Kind::ALL
            .into_iter()
            .find(|k| *k != Kind::Frame && k.name() == name)
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// A set of kinds.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Kinds(u8);

impl Kinds {
    pub const NONE: Kinds = Kinds(0);
    /// Every kind a Wasm node can take or give (all but `frame`).
    pub const ANY_VALUE: Kinds = Kinds(0b11110);

    pub fn of(kinds: &[Kind]) -> Kinds {
        Kinds(kinds.iter().fold(0, |acc, k| acc | k.bit()))
    }

    pub fn contains(self, kind: Kind) -> bool {
        self.0 & kind.bit() != 0
    }

    pub fn is_subset_of(self, other: Kinds) -> bool {
        self.0 & !other.0 == 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Kind> {
        Kind::ALL.into_iter().filter(move |k| self.contains(*k))
    }

    /// The kinds' names, for `/pipelines`.
    pub fn names(self) -> Vec<&'static str> {
        self.iter().map(Kind::name).collect()
    }

    /// Kinds named in a manifest's `takes` or `gives` list.
    pub fn from_manifest(names: &[String]) -> Result<Kinds, String> {
        names.iter().try_fold(Kinds::NONE, |acc, name| {
            Kind::from_manifest_name(name)
                .map(|k| Kinds(acc.0 | k.bit()))
                .ok_or_else(|| {
                    format!("unknown kind '{name}' (kinds: image, tensors, detections, json)")
                })
        })
    }
}

impl fmt::Display for Kinds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("nothing");
        }
        let names = self.names();
        f.write_str(&names.join(", "))
    }
}

impl fmt::Debug for Kinds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{{self}}}")
    }
}

/// What a node takes and gives. `declared` is false for a 0.1.0 component
/// whose manifest says nothing: its edges are not checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signature {
    pub takes: Kinds,
    pub gives: Kinds,
    pub declared: bool,
}

impl Signature {
    pub const fn new(takes: Kinds, gives: Kinds) -> Self {
        Signature {
            takes,
            gives,
            declared: true,
        }
    }

    /// A node that says nothing about its kinds (a 0.1.0 component).
    pub const UNDECLARED: Signature = Signature {
        takes: Kinds::ANY_VALUE,
        gives: Kinds::ANY_VALUE,
        declared: false,
    };

    /// This signature narrowed by a manifest's `takes` / `gives`, which may
    /// name only kinds the node itself declares.
    pub fn narrowed(
        self,
        takes: Option<&[String]>,
        gives: Option<&[String]>,
    ) -> Result<Signature, String> {
        let mut out = self;
        for (field, names, declared, slot) in [
            ("takes", takes, self.takes, &mut out.takes),
            ("gives", gives, self.gives, &mut out.gives),
        ] {
            let Some(names) = names else { continue };
            let asked = Kinds::from_manifest(names)?;
            if !asked.is_subset_of(declared) {
                return Err(format!(
                    "`{field} = [{}]` widens what the node {field} ({declared}); a manifest may only narrow it",
                    asked
                ));
            }
            *slot = asked;
            out.declared = true;
        }
        Ok(out)
    }
}

/// Checks one edge: every kind `from` may give must be one `to` takes.
/// The error names both nodes and both sets of kinds.
pub fn check_edge(
    from_id: &str,
    gives: Kinds,
    from_declared: bool,
    to_id: &str,
    to: &Signature,
) -> Result<(), String> {
    if !from_declared || !to.declared || gives.is_subset_of(to.takes) {
        return Ok(());
    }
    let hint = if gives == Kinds::of(&[Kind::Frame]) {
        "; decode it first with a jpeg_decode node"
    } else {
        ""
    };
    Err(format!(
        "edge {from_id} -> {to_id}: '{from_id}' gives {gives}, but '{to_id}' takes {}{hint}",
        to.takes
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const IMAGE: Kinds = Kinds(0b10);

    #[test]
    fn sets_print_in_the_manifest_words() {
        assert_eq!(
            Kinds::of(&[Kind::Json, Kind::Image]).to_string(),
            "image, json"
        );
        assert_eq!(Kinds::NONE.to_string(), "nothing");
        assert_eq!(Kinds::of(&[Kind::Image]), IMAGE);
        assert_eq!(
            Kinds::ANY_VALUE.names(),
            ["image", "tensors", "detections", "json"]
        );
    }

    #[test]
    fn an_edge_passes_only_when_every_given_kind_is_taken() {
        let crop = Signature::new(
            Kinds::of(&[Kind::Image, Kind::Json]),
            Kinds::of(&[Kind::Tensors]),
        );
        assert!(check_edge("boxes", Kinds::of(&[Kind::Json]), true, "crop", &crop).is_ok());
        let err = check_edge(
            "det",
            Kinds::of(&[Kind::Detections, Kind::Json]),
            true,
            "crop",
            &crop,
        )
        .unwrap_err();
        assert_eq!(
            err,
            "edge det -> crop: 'det' gives detections, json, but 'crop' takes image, json"
        );
        let frame =
            check_edge("frame", Kinds::of(&[Kind::Frame]), true, "crop", &crop).unwrap_err();
        assert!(
            frame.ends_with("decode it first with a jpeg_decode node"),
            "{frame}"
        );
    }

    #[test]
    fn undeclared_nodes_are_unchecked_until_a_manifest_narrows_them() {
        let legacy = Signature::UNDECLARED;
        assert!(check_edge("a", Kinds::of(&[Kind::Frame]), true, "b", &legacy).is_ok());
        assert!(check_edge("a", IMAGE, false, "b", &Signature::new(Kinds::NONE, IMAGE)).is_ok());
        let narrowed = legacy.narrowed(Some(&["json".to_string()]), None).unwrap();
        assert!(narrowed.declared);
        assert!(check_edge("a", IMAGE, true, "b", &narrowed).is_err());
    }

    #[test]
    fn a_manifest_may_narrow_but_never_widen() {
        let node = Signature::new(IMAGE, Kinds::of(&[Kind::Json, Kind::Detections]));
        let n = node.narrowed(None, Some(&["json".to_string()])).unwrap();
        assert_eq!(n.gives, Kinds::of(&[Kind::Json]));
        let err = node
            .narrowed(Some(&["tensors".to_string()]), None)
            .unwrap_err();
        assert!(err.contains("widens what the node takes (image)"), "{err}");
        let err = node
            .narrowed(Some(&["frame".to_string()]), None)
            .unwrap_err();
        assert!(err.contains("unknown kind 'frame'"), "{err}");
    }
}
