//! Bringing the registry in line with the pipelines directory: at start, and
//! again on every reload, one pass that loads only what changed.
//!
//! A pass reads every manifest (`*.toml`, not dot files), works out each
//! one's *version* (the sha256 of the manifest's bytes and of every
//! component and model it names, through the load cache's digest memo, so
//! an unchanged file costs a stat) and groups the files by the id they
//! declare. Then, per id:
//!
//! - the same version as the one listed: nothing to do (a failed version is
//!   not retried either, unless the pass is forced by SIGHUP: a missing
//!   library may have been installed outside every watched file);
//! - a new version: loaded and checked here, off the async runtime, while the
//!   listed version goes on serving; it replaces the entry only when it
//!   loads. When it fails and a version is serving, that version stays and
//!   the failure is recorded beside it as the *candidate*, with its reason;
//! - two files declaring one id: both fail, with a reason naming them, and a
//!   serving version of that id keeps serving;
//! - an id no file declares any more: unlisted, so new connects get
//!   `invalid_pipeline`; its open sessions go on with the plan they hold.
//!
//! A file's pipeline is the id it last declared: a manifest that stops
//! parsing is a failed candidate of the pipeline it was, not a new pipeline,
//! and a manifest whose id changes is a removal of the old id plus an
//! addition of the new one. Compiled components and opened models come from
//! the [`LoadCache`], keyed by content, so a pass compiles only components
//! whose bytes it has not seen; after the pass the cache keeps only what a
//! serving version uses. Changed pipelines load one after another within a
//! pass (one pass at a time, see `crate::reload`): a pass compiling a large
//! component delays the others changed with it, each still serving its
//! previous version meanwhile.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use sha2::{Digest as _, Sha256};

use super::cache::{short_hex, LoadCache};
use super::loader::{Int8Choice, LoadContext, Loader};
use super::manifest::{Manifest, FRAME_INPUT, MAX_MANIFEST_BYTES};
use super::plan::{NodeOp, Plan};
use super::registry::{Candidate, NodeSummary, Pipeline, PipelineRegistry, PipelineStatus};
use crate::metrics::Metrics;
use crate::nodes::onnx::OnnxConfig;
use crate::nodes::{typed_config, NativeKind};
use crate::wasm::WasmEngine;

/// Why a pass runs, which decides what it retries and whether it is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassKind {
    /// The first load, at start (not counted as reloads).
    Start,
    /// The watcher saw a file change.
    Changed,
    /// SIGHUP: as `Changed`, and failed versions are tried again.
    Forced,
}

/// What one pass did, by pipeline id.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct PassReport {
    pub loaded: Vec<String>,
    pub failed: Vec<String>,
    pub removed: Vec<String>,
    pub unchanged: usize,
    /// Components and models in the load cache after the pass.
    pub cached: (usize, usize),
}

/// Whether a directory entry's name is a manifest: `*.toml`, and not a dot
/// file (editors' swap files and the temporary file of a write-then-rename
/// are dot files or have other extensions).
pub fn is_manifest_name(name: &str) -> bool {
    !name.starts_with('.') && Path::new(name).extension().is_some_and(|x| x == "toml")
}

/// The manifests in `dir`, sorted by name.
pub fn manifest_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_str().is_some_and(is_manifest_name))
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

/// One manifest file as a pass found it.
struct Scanned {
    path: PathBuf,
    text: String,
    manifest: Result<Manifest, String>,
    version: String,
}

/// Keeps the registry in line with a pipelines directory (see module docs).
pub struct Reconciler {
    dir: PathBuf,
    ctx: LoadContext,
    engine: Arc<WasmEngine>,
    cache: LoadCache,
    registry: Arc<PipelineRegistry>,
    metrics: Arc<Metrics>,
    /// The id each manifest file last declared.
    file_ids: HashMap<PathBuf, String>,
    /// Every component and model file the manifests of the last pass name.
    deps: Vec<PathBuf>,
}

impl Reconciler {
    pub fn new(
        dir: PathBuf,
        ctx: LoadContext,
        engine: Arc<WasmEngine>,
        registry: Arc<PipelineRegistry>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Reconciler {
            dir,
            ctx,
            cache: LoadCache::new(
                metrics.component_compilations.clone(),
                metrics.model_loads.clone(),
            ),
            engine,
            registry,
            metrics,
            file_ids: HashMap::new(),
            deps: Vec::new(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The component and model files the manifests named at the last pass
    /// (missing ones too: a component copied in later must be noticed).
    pub fn deps(&self) -> &[PathBuf] {
        &self.deps
    }

    /// One pass over the directory (see module docs). `tenants` are the
    /// tenant ids whose metric series a newly listed pipeline gets at zero.
    /// An unreadable directory changes nothing and is the error.
    pub fn pass(&mut self, kind: PassKind, tenants: &[String]) -> std::io::Result<PassReport> {
        let files = manifest_files(&self.dir)?;
        let scanned: Vec<Scanned> = files.into_iter().map(|f| self.scan(f)).collect();
        let mut report = PassReport::default();
        let mut deps: Vec<PathBuf> = Vec::new();
        for s in &scanned {
            if let Ok(m) = &s.manifest {
                deps.extend(self.deps_of(m));
            }
        }
        let groups = self.group(scanned);
        let listed: Vec<String> = self.registry.all().iter().map(|p| p.id.clone()).collect();
        for id in listed.iter().filter(|id| !groups.contains_key(*id)) {
            if self.registry.remove(id).is_some() {
                tracing::info!(pipeline_id = %id, "pipeline removed; new connects are refused, open sessions go on");
                self.count(kind, id, "removed");
                self.metrics.set_pipeline_ready(id, None);
                report.removed.push(id.clone());
            }
        }
        for (id, group) in groups {
            self.settle(kind, &id, group, tenants, &mut report);
        }
        // A pipeline with a failed candidate still serves its previous version.
        for p in self.registry.all() {
            let ready = p.status == PipelineStatus::Ready;
            self.metrics.set_pipeline_ready(&p.id, Some(ready));
        }
        let keep: HashSet<_> = self
            .registry
            .all()
            .iter()
            .flat_map(|p| p.uses.clone())
            .collect();
        self.cache.retain(&keep);
        report.cached = self.cache.len();
        deps.sort();
        deps.dedup();
        self.cache.files.retain(&deps.iter().cloned().collect());
        self.deps = deps;
        Ok(report)
    }

    fn count(&self, kind: PassKind, id: &str, outcome: &str) {
        if kind != PassKind::Start {
            self.metrics
                .pipeline_reloads
                .with_label_values(&[id, outcome])
                .inc();
        }
    }

    /// Reads one file and works out its version.
    fn scan(&mut self, path: PathBuf) -> Scanned {
        let read = read_capped(&path);
        let mut h = Sha256::new();
        h.update(b"manifest\0");
        let (text, manifest) = match read {
            Ok(text) => {
                h.update(text.as_bytes());
                let m = Manifest::parse(&text).map_err(|e| e.to_string());
                (text, m)
            }
            Err(e) => {
                h.update(e.as_bytes());
                (String::new(), Err(e))
            }
        };
        if let Ok(m) = &manifest {
            for dep in self.deps_of(m) {
                h.update(b"\0");
                h.update(dep.to_string_lossy().as_bytes());
                match self.cache.files.digest(&dep) {
                    Some(d) => h.update(d),
                    None => h.update(b"\0missing"),
                }
            }
        }
        let digest: [u8; 32] = h.finalize().into();
        Scanned {
            path,
            text,
            manifest,
            version: short_hex(&digest),
        }
    }

    /// The component and model files `m` names, resolved as the loader does.
    fn deps_of(&self, m: &Manifest) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for n in &m.nodes {
            if n.kind == "wasm" {
                if let Some(c) = &n.component {
                    out.push(self.ctx.plugin_dir.join(c));
                }
            } else if n.kind == NativeKind::Onnx.name() {
                if let Ok(c) = typed_config::<OnnxConfig>(&n.config) {
                    out.push(self.ctx.model_dir.join(&c.model));
                    out.extend(c.int8_model.map(|f| self.ctx.model_dir.join(f)));
                }
            }
        }
        out
    }

    /// Files by the id they stand for: the id they declare; a file that does
    /// not parse stands for the id it last declared, else its file stem,
    /// unless a parsing file declares that id (then `stem@file name`).
    fn group(&mut self, scanned: Vec<Scanned>) -> BTreeMap<String, Vec<Scanned>> {
        let mut groups: BTreeMap<String, Vec<Scanned>> = BTreeMap::new();
        let mut unparsed = Vec::new();
        let mut file_ids = HashMap::new();
        for s in scanned {
            match &s.manifest {
                Ok(m) => {
                    file_ids.insert(s.path.clone(), m.id.clone());
                    groups.entry(m.id.clone()).or_default().push(s);
                }
                Err(_) => unparsed.push(s),
            }
        }
        for s in unparsed {
            let stem = s
                .path
                .file_stem()
                .map(|x| x.to_string_lossy().into_owned())
                .unwrap_or_default();
            let name = s
                .path
                .file_name()
                .map(|x| x.to_string_lossy().into_owned())
                .unwrap_or_default();
            let id = [self.file_ids.get(&s.path).cloned(), Some(stem.clone())]
                .into_iter()
                .flatten()
                .find(|id| !groups.contains_key(id))
                .unwrap_or(format!("{stem}@{name}"));
            if let Some(previous) = self.file_ids.get(&s.path) {
                // Still that pipeline's file until it declares another id.
                file_ids.insert(s.path.clone(), previous.clone());
            }
            groups.entry(id).or_default().push(s);
        }
        self.file_ids = file_ids;
        groups
    }

    /// Decides, and loads if need be, the one id `group` stands for.
    fn settle(
        &mut self,
        kind: PassKind,
        id: &str,
        mut group: Vec<Scanned>,
        tenants: &[String],
        report: &mut PassReport,
    ) {
        let existing = self.registry.get(id);
        if group.len() > 1 {
            let names: Vec<String> = group.iter().map(|s| s.path.display().to_string()).collect();
            let mut h = Sha256::new();
            for s in &group {
                h.update(s.version.as_bytes());
            }
            let version = short_hex(&h.finalize().into());
            if self.already_failed(kind, existing.as_deref(), &version) {
                report.unchanged += 1;
                return;
            }
            let reason = format!(
                "pipeline id '{id}' is declared by more than one manifest ({}); give each its own id",
                names.join(", ")
            );
            let source = group.swap_remove(0).path;
            self.fail(kind, id, existing, version, reason, source, None);
            report.failed.push(id.to_string());
            return;
        }
        let Some(s) = group.pop() else {
            return;
        };
        if let Some(p) = existing.as_deref() {
            if p.status == PipelineStatus::Ready && p.version == s.version {
                if p.candidate.is_some() || p.source != s.path {
                    // Back to the serving version (the failed candidate is
                    // gone), or the same bytes under another file name.
                    let mut p = p.clone();
                    p.candidate = None;
                    p.source = s.path;
                    self.registry.insert(p);
                }
                report.unchanged += 1;
                return;
            }
        }
        if self.already_failed(kind, existing.as_deref(), &s.version) {
            report.unchanged += 1;
            return;
        }
        let m = match s.manifest {
            Ok(m) => m,
            Err(reason) => {
                self.fail(kind, id, existing, s.version, reason, s.path, None);
                report.failed.push(id.to_string());
                return;
            }
        };
        let mut loader = Loader::new(&self.ctx, &self.engine, &mut self.cache);
        let planned = loader.plan_choosing_models(&m, &s.text);
        let uses = loader.take_used();
        match planned {
            Ok((plan, int8)) => {
                if let Some(int8) = &int8 {
                    tracing::info!(pipeline_id = %id, int8_models = int8.runs, reason = %int8.reason, "int8 models");
                }
                let previous = existing.as_ref().map(|p| p.version.clone());
                let p = Pipeline {
                    id: m.id.clone(),
                    description: m.description.clone(),
                    source: s.path,
                    nodes: summaries(&m, Some(&*plan)),
                    status: PipelineStatus::Ready,
                    plan: Some(plan),
                    int8: int8.map(|mut i| {
                        i.reason = self.public(&i.reason);
                        i
                    }),
                    version: s.version,
                    loaded_at: SystemTime::now(),
                    candidate: None,
                    uses: uses.into_iter().collect(),
                };
                match (kind, previous) {
                    (PassKind::Start, _) => {
                        tracing::info!(pipeline_id = %id, nodes = p.nodes.len(), version = %p.version, "pipeline loaded")
                    }
                    (_, previous) => {
                        tracing::info!(pipeline_id = %id, nodes = p.nodes.len(), version = %p.version,
                            previous_version = previous.as_deref().unwrap_or(""), "pipeline reloaded; new sessions get this version")
                    }
                }
                self.metrics.register_pipeline(id, tenants);
                self.registry.insert(p);
                self.count(kind, id, "loaded");
                report.loaded.push(id.to_string());
            }
            Err(reason) => {
                self.fail(kind, id, existing, s.version, reason, s.path, Some(&m));
                report.failed.push(id.to_string());
            }
        }
    }

    /// `text` with every configured directory's path removed from the file
    /// names it mentions: clients never see where the server keeps its files.
    fn public(&self, text: &str) -> String {
        let mut dirs: Vec<PathBuf> = vec![
            self.dir.clone(),
            self.ctx.plugin_dir.clone(),
            self.ctx.model_dir.clone(),
        ];
        if let Int8Choice::Gated(gate) = &self.ctx.int8 {
            dirs.push(gate.frames_dir.clone());
        }
        relative_to(text, &dirs)
    }

    /// Whether `version` of `id` is the one already listed as failed (not
    /// retried unless forced).
    fn already_failed(&self, kind: PassKind, existing: Option<&Pipeline>, version: &str) -> bool {
        if kind == PassKind::Forced {
            return false;
        }
        existing.is_some_and(|p| match &p.status {
            PipelineStatus::Failed(_) => p.version == version,
            PipelineStatus::Ready => p.candidate.as_ref().is_some_and(|c| c.version == version),
        })
    }

    /// Records a failed version: beside the serving version as its candidate,
    /// or as the entry itself when none serves.
    #[allow(clippy::too_many_arguments)]
    fn fail(
        &self,
        kind: PassKind,
        id: &str,
        existing: Option<Arc<Pipeline>>,
        version: String,
        reason: String,
        source: PathBuf,
        manifest: Option<&Manifest>,
    ) {
        self.count(kind, id, "failed");
        // The log above keeps the full paths for the operator; what clients
        // see (`/pipelines`, a refused connect) names files relative to
        // their configured directories.
        let public = self.public(&reason);
        match existing.as_deref() {
            Some(p) if p.status == PipelineStatus::Ready => {
                tracing::error!(pipeline_id = %id, file = %source.display(), version = %version, serving_version = %p.version,
                    %reason, "pipeline candidate failed its load check; the serving version stays");
                let mut p = p.clone();
                p.candidate = Some(Candidate {
                    version,
                    reason: public,
                    source,
                    failed_at: SystemTime::now(),
                });
                self.registry.insert(p);
            }
            _ => {
                tracing::error!(pipeline_id = %id, file = %source.display(), version = %version, %reason, "pipeline failed its load check");
                self.registry.insert(Pipeline {
                    id: id.to_string(),
                    description: manifest.map(|m| m.description.clone()).unwrap_or_default(),
                    source,
                    nodes: manifest.map(|m| summaries(m, None)).unwrap_or_default(),
                    status: PipelineStatus::Failed(public),
                    plan: None,
                    int8: None,
                    version,
                    loaded_at: SystemTime::now(),
                    candidate: None,
                    uses: Vec::new(),
                });
            }
        }
    }
}

/// The listing's nodes: the manifest's, with what the plan learnt of each
/// (kinds taken and given, a Wasm node's WIT version) once it loaded.
fn summaries(m: &Manifest, plan: Option<&Plan>) -> Vec<NodeSummary> {
    let mut nodes: Vec<NodeSummary> = m
        .nodes
        .iter()
        .map(|n| NodeSummary {
            id: n.id.clone(),
            kind: n.kind.clone(),
            // Show the effective inputs: none listed means the client's frame.
            inputs: if n.inputs.is_empty() {
                vec![FRAME_INPUT.to_string()]
            } else {
                n.inputs.clone()
            },
            takes: None,
            gives: None,
            wit: None,
            when: n.when.clone(),
            may_skip: false,
            stateful: n.kind == "wasm"
                || NativeKind::from_name(&n.kind).is_some_and(NativeKind::stateful),
        })
        .collect();
    if let Some(plan) = plan {
        for (summary, may_skip) in nodes.iter_mut().zip(&plan.dag.may_skip) {
            summary.may_skip = *may_skip;
        }
        for (summary, node) in nodes.iter_mut().zip(&plan.nodes) {
            if node.signature.declared {
                summary.takes = Some(node.signature.takes.names());
                summary.gives = Some(node.signature.gives.names());
            }
            if let NodeOp::Wasm { component, .. } = &node.op {
                summary.wit = Some(component.wit_version().as_str());
            }
        }
    }
    nodes
}

fn read_capped(file: &Path) -> Result<String, String> {
    let len = std::fs::metadata(file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?
        .len();
    if len > MAX_MANIFEST_BYTES as u64 {
        return Err(format!(
            "manifest is {len} bytes, over the {MAX_MANIFEST_BYTES} byte limit"
        ));
    }
    std::fs::read_to_string(file).map_err(|e| format!("cannot read {}: {e}", file.display()))
}

/// `text` with `dir/` (as configured and canonical) removed before the file
/// names it mentions, and a bare `dir` replaced by its last component.
fn relative_to(text: &str, dirs: &[PathBuf]) -> String {
    let mut forms: Vec<String> = Vec::new();
    for dir in dirs {
        for form in [Some(dir.clone()), dir.canonicalize().ok()]
            .into_iter()
            .flatten()
        {
            let shown = form.display().to_string();
            let shown = shown.trim_end_matches('/').to_string();
            if !shown.is_empty() && shown != "." && !forms.contains(&shown) {
                forms.push(shown);
            }
        }
    }
    // Longest first, so a directory inside another is cut whole.
    forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
    let mut out = text.to_string();
    for form in &forms {
        out = out.replace(&format!("{form}/"), "");
        let last = Path::new(form)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        out = out.replace(form.as_str(), &last);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_name_files_relative_to_their_directories() {
        let dirs = [
            PathBuf::from("/srv/sh/plugins"),
            PathBuf::from("/srv/sh/pipelines"),
        ];
        assert_eq!(
            relative_to("cannot read component /srv/sh/plugins/x.wasm: gone", &dirs),
            "cannot read component x.wasm: gone"
        );
        assert_eq!(
            relative_to(
                "id 'a' is declared by /srv/sh/pipelines/a.toml and /srv/sh/pipelines/b.toml",
                &dirs
            ),
            "id 'a' is declared by a.toml and b.toml"
        );
        assert_eq!(
            relative_to("no manifests in /srv/sh/pipelines", &dirs),
            "no manifests in pipelines"
        );
    }
    use crate::config::Config;
    use crate::nodes::onnx::OnnxSizing;
    use crate::pipeline::loader::Int8Choice;
    use crate::wasm::SandboxLimits;

    /// A reconciler over `dir` (native-only manifests: no component to build).
    fn reconciler(dir: &Path) -> Result<(Reconciler, Arc<PipelineRegistry>), String> {
        let c = Config::default();
        let engine = WasmEngine::new(SandboxLimits::from_config(&c)).map_err(|e| e.to_string())?;
        let ctx = LoadContext {
            plugin_dir: dir.join("plugins"),
            model_dir: dir.join("models"),
            ort_lib: c.ort_lib.clone(),
            onnx: OnnxSizing::from_config(&c),
            int8: Int8Choice::Never("off"),
        };
        let registry = Arc::new(PipelineRegistry::default());
        let metrics = Arc::new(Metrics::new().map_err(|e| e.to_string())?);
        let r = Reconciler::new(
            dir.to_path_buf(),
            ctx,
            Arc::new(engine),
            registry.clone(),
            metrics,
        );
        Ok((r, registry))
    }

    fn decode_only(id: &str, description: &str) -> String {
        format!("id = \"{id}\"\ndescription = \"{description}\"\n[[nodes]]\nid = \"d\"\nkind = \"jpeg_decode\"\n")
    }

    #[test]
    fn a_pass_loads_only_what_changed_and_keeps_what_serves() -> Result<(), String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let write = |name: &str, text: &str| {
            std::fs::write(dir.path().join(name), text).map_err(|e| e.to_string())
        };
        write("a.toml", &decode_only("x", "one"))?;
        let (mut r, registry) = reconciler(dir.path())?;
        let mut pass = |kind| r.pass(kind, &[]).map_err(|e| e.to_string());
        let report = pass(PassKind::Start)?;
        assert_eq!(report.loaded, vec!["x".to_string()]);
        let v1 = registry.get("x").map(|p| p.version.clone());
        assert_eq!(pass(PassKind::Changed)?.unchanged, 1, "nothing changed");
        // Changed: a new version.
        write("a.toml", &decode_only("x", "two"))?;
        assert_eq!(pass(PassKind::Changed)?.loaded, vec!["x".to_string()]);
        let v2 = registry.get("x").map(|p| p.version.clone());
        assert_ne!(v1, v2);
        // Broken: the serving version stays, the candidate is recorded, once.
        write("a.toml", "id = \"x\"\nnodes = 3")?;
        assert_eq!(pass(PassKind::Changed)?.failed, vec!["x".to_string()]);
        let x = registry.get("x").ok_or("x unlisted")?;
        assert_eq!(
            (x.status.clone(), Some(x.version.clone())),
            (PipelineStatus::Ready, v2.clone())
        );
        assert!(x.candidate.is_some());
        assert!(registry.lookup(Some("x")).is_ok());
        assert_eq!(pass(PassKind::Changed)?.unchanged, 1, "not retried");
        assert_eq!(
            pass(PassKind::Forced)?.failed,
            vec!["x".to_string()],
            "retried when forced"
        );
        // Reverted: the candidate is withdrawn.
        write("a.toml", &decode_only("x", "two"))?;
        pass(PassKind::Changed)?;
        assert!(registry.get("x").is_some_and(|p| p.candidate.is_none()));
        // A duplicate id: both named; x still serves.
        write("b.toml", &decode_only("x", "three"))?;
        assert_eq!(pass(PassKind::Changed)?.failed, vec!["x".to_string()]);
        let reason = registry
            .get("x")
            .and_then(|p| p.candidate.clone())
            .map(|c| c.reason)
            .unwrap_or_default();
        assert!(
            reason.contains("a.toml") && reason.contains("b.toml"),
            "{reason}"
        );
        // The id changes: a removal and an addition.
        write("b.toml", &decode_only("y", "three"))?;
        write("a.toml", &decode_only("z", "two"))?;
        let report = pass(PassKind::Changed)?;
        assert_eq!(report.removed, vec!["x".to_string()]);
        assert_eq!(report.loaded, vec!["y".to_string(), "z".to_string()]);
        assert!(registry.lookup(Some("x")).is_err());
        // A broken new file stands for its stem.
        write("c.toml", "not [ toml")?;
        assert_eq!(pass(PassKind::Changed)?.failed, vec!["c".to_string()]);
        std::fs::remove_file(dir.path().join("c.toml")).map_err(|e| e.to_string())?;
        assert_eq!(pass(PassKind::Changed)?.removed, vec!["c".to_string()]);
        Ok(())
    }

    #[test]
    fn only_toml_files_that_are_not_dot_files_are_manifests() {
        for (name, is) in [
            ("ocr.toml", true),
            ("a.b.toml", true),
            (".ocr.toml", false),
            (".ocr.toml.swp", false),
            ("ocr.toml~", false),
            ("#ocr.toml#", false),
            ("ocr.toml.tmp", false),
            ("ocr.yaml", false),
            ("4913", false),
            ("toml", false),
        ] {
            assert_eq!(is_manifest_name(name), is, "{name}");
        }
    }
}
