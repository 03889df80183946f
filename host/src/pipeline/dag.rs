//! The shape checks on a pipeline's graph, and the order it runs in.
//!
//! Execution is by waves: wave 0 holds the nodes fed only by the frame, wave
//! k the nodes whose inputs all sit in earlier waves. Nodes within a wave are
//! independent, so the executor may run them in parallel; computing waves with
//! Kahn's algorithm also finds cycles (whatever is left unplaced is on one).

use std::collections::HashMap;

use super::manifest::{Manifest, FRAME_INPUT};

/// Where a node's input comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Frame,
    Node(usize),
}

/// One input of a node: where it comes from and, for `node.tensor`
/// selectors, the one tensor of that node's output it takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    pub source: Source,
    pub tensor: Option<String>,
}

/// A checked, ordered graph over the manifest's node indices.
#[derive(Debug, Clone, PartialEq)]
pub struct Dag {
    pub inputs: Vec<Vec<Edge>>,
    pub waves: Vec<Vec<usize>>,
    pub output: usize,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DagError {
    #[error("pipeline has no nodes")]
    Empty,
    #[error("node id '{0}' is used twice")]
    DuplicateId(String),
    #[error("node id '{FRAME_INPUT}' is reserved for the client's frame")]
    ReservedId,
    #[error("node '{node}' takes input '{input}', which is not a node of this pipeline")]
    UnknownInput { node: String, input: String },
    #[error("node '{node}' lists input '{input}' twice")]
    DuplicateInput { node: String, input: String },
    #[error("nodes {0:?} are on, or wait on, a cycle")]
    Cycle(Vec<String>),
    #[error("output node '{0}' is not a node of this pipeline")]
    UnknownOutput(String),
    #[error("pipeline must have exactly one output node, but {0:?} feed no other node")]
    OutputCount(Vec<String>),
    #[error("output node '{output}' is not the only node nothing consumes: {unused:?} would be computed and thrown away")]
    UnusedNodes { output: String, unused: Vec<String> },
}

impl Dag {
    pub fn build(m: &Manifest) -> Result<Dag, DagError> {
        if m.nodes.is_empty() {
            return Err(DagError::Empty);
        }
        let mut index = HashMap::new();
        for (i, n) in m.nodes.iter().enumerate() {
            if n.id == FRAME_INPUT {
                return Err(DagError::ReservedId);
            }
            if index.insert(n.id.as_str(), i).is_some() {
                return Err(DagError::DuplicateId(n.id.clone()));
            }
        }
        let mut inputs = Vec::with_capacity(m.nodes.len());
        let mut consumed = vec![false; m.nodes.len()];
        for n in &m.nodes {
            let mut sources = Vec::new();
            let names: Vec<&str> = if n.inputs.is_empty() {
                vec![FRAME_INPUT]
            } else {
                n.inputs.iter().map(String::as_str).collect()
            };
            for (k, name) in names.iter().enumerate() {
                if names[..k].contains(name) {
                    return Err(DagError::DuplicateInput {
                        node: n.id.clone(),
                        input: name.to_string(),
                    });
                }
                let (node_name, tensor) = match name.split_once('.') {
                    Some((node, tensor)) => (node, Some(tensor.to_string())),
                    None => (*name, None),
                };
                let source = if node_name == FRAME_INPUT && tensor.is_none() {
                    Source::Frame
                } else {
                    let j = *index.get(node_name).ok_or_else(|| DagError::UnknownInput {
                        node: n.id.clone(),
                        input: name.to_string(),
                    })?;
                    consumed[j] = true;
                    Source::Node(j)
                };
                sources.push(Edge { source, tensor });
            }
            inputs.push(sources);
        }

        let waves = waves(&inputs).map_err(|stuck| {
            DagError::Cycle(stuck.iter().map(|&i| m.nodes[i].id.clone()).collect())
        })?;

        let sinks: Vec<usize> = (0..m.nodes.len()).filter(|&i| !consumed[i]).collect();
        let output = match &m.output {
            Some(name) => {
                let o = *index
                    .get(name.as_str())
                    .ok_or_else(|| DagError::UnknownOutput(name.clone()))?;
                let unused: Vec<String> = sinks
                    .iter()
                    .filter(|&&s| s != o)
                    .map(|&s| m.nodes[s].id.clone())
                    .collect();
                if !unused.is_empty() {
                    return Err(DagError::UnusedNodes {
                        output: name.clone(),
                        unused,
                    });
                }
                o
            }
            None => match sinks.as_slice() {
                [only] => *only,
                _ => {
                    return Err(DagError::OutputCount(
                        sinks.iter().map(|&s| m.nodes[s].id.clone()).collect(),
                    ))
                }
            },
        };
        Ok(Dag {
            inputs,
            waves,
            output,
        })
    }
}

/// Kahn's algorithm by levels; on a cycle, returns the nodes left unplaced.
fn waves(inputs: &[Vec<Edge>]) -> Result<Vec<Vec<usize>>, Vec<usize>> {
    let n = inputs.len();
    let mut level: Vec<Option<usize>> = vec![None; n];
    let mut placed = 0;
    let mut waves: Vec<Vec<usize>> = Vec::new();
    while placed < n {
        let wave: Vec<usize> = (0..n)
            .filter(|&i| level[i].is_none())
            .filter(|&i| {
                inputs[i].iter().all(|e| match &e.source {
                    Source::Frame => true,
                    Source::Node(j) => level[*j].is_some_and(|l| l < waves.len()),
                })
            })
            .collect();
        if wave.is_empty() {
            return Err((0..n).filter(|&i| level[i].is_none()).collect());
        }
        for &i in &wave {
            level[i] = Some(waves.len());
        }
        placed += wave.len();
        waves.push(wave);
    }
    Ok(waves)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::manifest::NodeManifest;

    fn manifest(nodes: &[(&str, &[&str])], output: Option<&str>) -> Manifest {
        Manifest {
            id: "p".into(),
            description: String::new(),
            output: output.map(String::from),
            nodes: nodes
                .iter()
                .map(|(id, inputs)| NodeManifest {
                    id: id.to_string(),
                    kind: "wasm".into(),
                    inputs: inputs.iter().map(|s| s.to_string()).collect(),
                    component: None,
                    config: Default::default(),
                    metadata: Default::default(),
                    memory_mb: None,
                    timeout_ms: None,
                    takes: None,
                    gives: None,
                })
                .collect(),
        }
    }

    #[test]
    fn a_diamond_runs_in_three_waves_with_its_branches_together() {
        let m = manifest(
            &[
                ("decode", &[]),
                ("a", &["decode"]),
                ("b", &["decode"]),
                ("merge", &["a", "b"]),
            ],
            None,
        );
        let dag = Dag::build(&m);
        assert_eq!(
            dag.map(|d| (d.waves, d.output)),
            Ok((vec![vec![0], vec![1, 2], vec![3]], 3))
        );
    }

    #[test]
    fn shape_errors_are_named() {
        assert_eq!(Dag::build(&manifest(&[], None)), Err(DagError::Empty));
        assert_eq!(
            Dag::build(&manifest(&[("a", &[]), ("a", &[])], None)),
            Err(DagError::DuplicateId("a".into()))
        );
        assert_eq!(
            Dag::build(&manifest(&[("frame", &[])], None)),
            Err(DagError::ReservedId)
        );
        assert_eq!(
            Dag::build(&manifest(&[("a", &["nope"])], None)),
            Err(DagError::UnknownInput {
                node: "a".into(),
                input: "nope".into()
            })
        );
        assert_eq!(
            Dag::build(&manifest(&[("a", &["frame", "frame"])], None)),
            Err(DagError::DuplicateInput {
                node: "a".into(),
                input: "frame".into()
            })
        );
        assert_eq!(
            Dag::build(&manifest(
                &[
                    ("d", &[]),
                    ("a", &["d", "b"]),
                    ("b", &["a"]),
                    ("out", &["b"])
                ],
                None
            )),
            Err(DagError::Cycle(vec!["a".into(), "b".into(), "out".into()]))
        );
        assert_eq!(
            Dag::build(&manifest(&[("d", &[]), ("a", &["d"]), ("b", &["d"])], None)),
            Err(DagError::OutputCount(vec!["a".into(), "b".into()]))
        );
        assert_eq!(
            Dag::build(&manifest(
                &[("d", &[]), ("a", &["d"]), ("b", &["d"])],
                Some("a")
            )),
            Err(DagError::UnusedNodes {
                output: "a".into(),
                unused: vec!["b".into()]
            })
        );
        assert_eq!(
            Dag::build(&manifest(&[("d", &[])], Some("zz"))),
            Err(DagError::UnknownOutput("zz".into()))
        );
        assert!(Dag::build(&manifest(&[("d", &[]), ("a", &["d"])], Some("a"))).is_ok());
    }

    #[test]
    fn a_tensor_selector_names_one_output_tensor_of_a_node() {
        let m = manifest(
            &[
                ("pre", &[]),
                ("model", &["pre"]),
                ("post", &["model", "pre.meta"]),
            ],
            None,
        );
        let dag = Dag::build(&m).map_err(|e| e.to_string());
        let post = dag.map(|d| d.inputs[2].clone());
        assert_eq!(
            post,
            Ok(vec![
                Edge {
                    source: Source::Node(1),
                    tensor: None
                },
                Edge {
                    source: Source::Node(0),
                    tensor: Some("meta".into())
                }
            ])
        );
        assert_eq!(
            Dag::build(&manifest(&[("a", &["nope.meta"])], None)),
            Err(DagError::UnknownInput {
                node: "a".into(),
                input: "nope.meta".into()
            })
        );
    }

    #[test]
    fn a_self_loop_is_a_cycle() {
        assert_eq!(
            Dag::build(&manifest(&[("a", &["a"])], None)),
            Err(DagError::Cycle(vec!["a".into()]))
        );
    }
}
