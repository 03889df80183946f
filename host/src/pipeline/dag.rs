//! The shape checks on a pipeline's graph, and the order it runs in.
//!
//! Execution is by waves: wave 0 holds the nodes fed only by the frame, wave
//! k the nodes whose inputs all sit in earlier waves. Nodes within a wave are
//! independent, so the executor may run them in parallel; computing waves with
//! Kahn's algorithm also finds cycles (whatever is left unplaced is on one).
//!
//! A node's `when` condition is an edge of its own: the node it names runs in
//! an earlier wave, though its value is not one of the node's inputs. Which
//! nodes may be skipped on some frame is known here, from the shape alone: a
//! conditional node, and every node with a required (not `?`) input from one
//! that may be skipped. The output node must not be among them, since every
//! frame gets a reply.

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
    /// Written `node?`: when the source was skipped, the node runs without
    /// this input instead of being skipped itself.
    pub optional: bool,
}

/// A node's `when`: the node whose value decides, and the field of it that
/// does. A JSON value is true unless it is `null`, `false`, `0`, `""`, `[]`
/// or `{}`; with a field, the value of that key (`a.b` for nested keys,
/// absent is false). A tensors value is true when it holds a tensor (named
/// `field`, with a field) with at least one element. Any other value is
/// true. A skipped source makes the condition false.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub source: usize,
    pub field: Option<String>,
}

/// A checked, ordered graph over the manifest's node indices.
#[derive(Debug, Clone, PartialEq)]
pub struct Dag {
    pub inputs: Vec<Vec<Edge>>,
    pub waves: Vec<Vec<usize>>,
    pub output: usize,
    /// Each node's `when`, if it has one.
    pub when: Vec<Option<Condition>>,
    /// Whether each node may be skipped on some frame (see the module doc).
    pub may_skip: Vec<bool>,
}

impl Dag {
    /// A graph with no conditions, as tests build one by hand.
    #[cfg(test)]
    pub fn unconditional(inputs: Vec<Vec<Edge>>, waves: Vec<Vec<usize>>, output: usize) -> Dag {
        let n = inputs.len();
        Dag {
            inputs,
            waves,
            output,
            when: vec![None; n],
            may_skip: vec![false; n],
        }
    }
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
    #[error(
        "node '{node}' has when = '{when}', but '{source_node}' is not a node of this pipeline"
    )]
    UnknownCondition {
        node: String,
        when: String,
        source_node: String,
    },
    #[error("node '{node}' cannot take the client's frame as an optional input")]
    OptionalFrame { node: String },
    #[error("output node '{output}' may be skipped (it is conditional, or needs '{because}', which may be): every frame needs a reply; take that input as optional ('{because}?') or drop the condition")]
    OutputMaySkip { output: String, because: String },
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
                let (name, optional) = match name.strip_suffix('?') {
                    Some(required) => (required, true),
                    None => (*name, false),
                };
                let (node_name, tensor) = match name.split_once('.') {
                    Some((node, tensor)) => (node, Some(tensor.to_string())),
                    None => (name, None),
                };
                let source = if node_name == FRAME_INPUT && tensor.is_none() {
                    if optional {
                        return Err(DagError::OptionalFrame { node: n.id.clone() });
                    }
                    Source::Frame
                } else {
                    let j = *index.get(node_name).ok_or_else(|| DagError::UnknownInput {
                        node: n.id.clone(),
                        input: name.to_string(),
                    })?;
                    consumed[j] = true;
                    Source::Node(j)
                };
                sources.push(Edge {
                    source,
                    tensor,
                    optional,
                });
            }
            inputs.push(sources);
        }
        let mut when = Vec::with_capacity(m.nodes.len());
        for n in &m.nodes {
            let Some(text) = &n.when else {
                when.push(None);
                continue;
            };
            let (node_name, field) = match text.split_once('.') {
                Some((node, field)) => (node, Some(field.to_string())),
                None => (text.as_str(), None),
            };
            let source = *index
                .get(node_name)
                .ok_or_else(|| DagError::UnknownCondition {
                    node: n.id.clone(),
                    when: text.clone(),
                    source_node: node_name.to_string(),
                })?;
            consumed[source] = true;
            when.push(Some(Condition { source, field }));
        }

        let waves = waves(&inputs, &when).map_err(|stuck| {
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
        let may_skip = may_skip(&inputs, &when, &waves);
        if may_skip[output] {
            let because = match &when[output] {
                Some(_) => m.nodes[output].id.clone(),
                None => inputs[output]
                    .iter()
                    .find_map(|e| match e.source {
                        Source::Node(j) if !e.optional && may_skip[j] => {
                            Some(m.nodes[j].id.clone())
                        }
                        _ => None,
                    })
                    .unwrap_or_default(),
            };
            return Err(DagError::OutputMaySkip {
                output: m.nodes[output].id.clone(),
                because,
            });
        }
        Ok(Dag {
            inputs,
            waves,
            output,
            when,
            may_skip,
        })
    }
}

/// Which nodes may be skipped: conditional ones, and those with a required
/// input from one that may be; computed in wave order, so sources come first.
fn may_skip(inputs: &[Vec<Edge>], when: &[Option<Condition>], waves: &[Vec<usize>]) -> Vec<bool> {
    let mut skip = vec![false; inputs.len()];
    for &i in waves.iter().flatten() {
        skip[i] = when[i].is_some()
            || inputs[i].iter().any(|e| match e.source {
                Source::Node(j) => !e.optional && skip[j],
                Source::Frame => false,
            });
    }
    skip
}

/// Kahn's algorithm by levels; on a cycle, returns the nodes left unplaced.
/// A node waits for its inputs and for the node its `when` names.
fn waves(inputs: &[Vec<Edge>], when: &[Option<Condition>]) -> Result<Vec<Vec<usize>>, Vec<usize>> {
    let n = inputs.len();
    let mut level: Vec<Option<usize>> = vec![None; n];
    let mut placed = 0;
    let mut waves: Vec<Vec<usize>> = Vec::new();
    while placed < n {
        let wave: Vec<usize> = (0..n)
            .filter(|&i| level[i].is_none())
            .filter(|&i| {
                let placed = |j: usize| level[j].is_some_and(|l| l < waves.len());
                inputs[i].iter().all(|e| match &e.source {
                    Source::Frame => true,
                    Source::Node(j) => placed(*j),
                }) && when[i].as_ref().is_none_or(|c| placed(c.source))
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
                    when: None,
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
                    tensor: None,
                    optional: false
                },
                Edge {
                    source: Source::Node(0),
                    tensor: Some("meta".into()),
                    optional: false
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

    fn conditional(nodes: &[(&str, &[&str], Option<&str>)]) -> Manifest {
        let mut m = manifest(
            &nodes.iter().map(|(id, i, _)| (*id, *i)).collect::<Vec<_>>(),
            None,
        );
        for (n, (_, _, when)) in m.nodes.iter_mut().zip(nodes) {
            n.when = when.map(String::from);
        }
        m
    }

    #[test]
    fn a_condition_orders_its_node_after_the_source_and_skipping_spreads_to_required_inputs() {
        // d -> gate; heavy runs when gate.go; post needs heavy; join takes it optionally.
        let m = conditional(&[
            ("d", &[], None),
            ("gate", &["d"], None),
            ("heavy", &["d"], Some("gate.go")),
            ("post", &["heavy"], None),
            ("join", &["post?", "gate"], None),
        ]);
        let dag = Dag::build(&m).map_err(|e| e.to_string());
        let Ok(dag) = dag else {
            return assert_eq!(dag.map(|_| ()), Ok(()));
        };
        assert_eq!(dag.waves, vec![vec![0], vec![1], vec![2], vec![3], vec![4]]);
        assert_eq!(dag.may_skip, vec![false, false, true, true, false]);
        assert_eq!(
            dag.when[2],
            Some(Condition {
                source: 1,
                field: Some("go".into())
            })
        );
        assert!(dag.inputs[4][0].optional && !dag.inputs[4][1].optional);
        assert_eq!(dag.inputs[4][0].source, Source::Node(3));
    }

    #[test]
    fn an_output_that_may_be_skipped_or_a_bad_condition_is_refused() {
        let required = conditional(&[
            ("d", &[], None),
            ("heavy", &["d"], Some("d")),
            ("out", &["heavy"], None),
        ]);
        assert_eq!(
            Dag::build(&required),
            Err(DagError::OutputMaySkip {
                output: "out".into(),
                because: "heavy".into()
            })
        );
        let itself = conditional(&[("d", &[], None), ("out", &["d"], Some("d.x"))]);
        assert_eq!(
            Dag::build(&itself),
            Err(DagError::OutputMaySkip {
                output: "out".into(),
                because: "out".into()
            })
        );
        let unknown = conditional(&[("d", &[], None), ("out", &["d"], Some("nope.x"))]);
        assert!(matches!(
            Dag::build(&unknown),
            Err(DagError::UnknownCondition { .. })
        ));
        let frame = conditional(&[("d", &["frame?"], None)]);
        assert!(matches!(
            Dag::build(&frame),
            Err(DagError::OptionalFrame { .. })
        ));
        // A node that waits on its own condition is on a cycle.
        let cycle = conditional(&[
            ("d", &[], None),
            ("a", &["d"], Some("b")),
            ("b", &["a"], None),
        ]);
        assert!(matches!(Dag::build(&cycle), Err(DagError::Cycle(_))));
    }

    #[test]
    fn a_self_loop_is_a_cycle() {
        assert_eq!(
            Dag::build(&manifest(&[("a", &["a"])], None)),
            Err(DagError::Cycle(vec!["a".into()]))
        );
    }
}
