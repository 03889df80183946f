//! `streamhost new-node NAME --lang rust|python|js`: writes a node that builds as it is, and a
//! pipeline that runs it, into a checkout of this repository.
//!
//! Why it is shaped so. One name is everything: `plugins/NAME/` (the source), the component
//! `NAME.wasm` (the build scripts name Rust crates, `app.py` and `app.js` folders alike after
//! the folder, `-` read as `_`), `pipelines/NAME.toml` and the pipeline id. So the name is
//! checked against every one of those namespaces before anything is written: the folders under
//! `plugins/` (their component names), the workspace's crates, the manifests' ids, the native
//! node kinds, and the words Rust or the plugin tooling reserve. Nothing is ever overwritten:
//! every path is checked first and then created with `create_new`, and a failure part-way
//! removes what this run created. The templates are files under `host/templates/new-node/`,
//! compiled in with `include_str!`, so they can be read (and diffed) as the code they become.
//! A Rust node must also be a member of the plugins workspace: cargo's glob members cannot be
//! used (they fail on the JavaScript and Python folders beside the crates), so the crate is
//! appended to `members` in `plugins/Cargo.toml` by a text edit that keeps its comments.

use std::fmt::Write as _;
use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::nodes::NativeKind;

/// The language of the node to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    /// A crate on the Rust SDK (`plugins/sdk`), built by cargo.
    Rust,
    /// `app.py`, built by componentize-py.
    Python,
    /// `app.js`, built by componentize-js.
    Js,
}

impl Lang {
    fn flag(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::Python => "python",
            Lang::Js => "js",
        }
    }

    fn language(self) -> &'static str {
        match self {
            Lang::Rust => "Rust",
            Lang::Python => "Python",
            Lang::Js => "JavaScript",
        }
    }

    /// The file the author edits, relative to `plugins/NAME/`.
    fn source(self) -> &'static str {
        match self {
            Lang::Rust => "src/lib.rs",
            Lang::Python => "app.py",
            Lang::Js => "app.js",
        }
    }

    /// `(path under plugins/NAME/, template)` of each file the node is made of.
    fn templates(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Lang::Rust => &[
                (
                    "Cargo.toml",
                    include_str!("../templates/new-node/rust/Cargo.toml"),
                ),
                (
                    "src/lib.rs",
                    include_str!("../templates/new-node/rust/lib.rs"),
                ),
            ],
            Lang::Python => &[(
                "app.py",
                include_str!("../templates/new-node/python/app.py"),
            )],
            Lang::Js => &[("app.js", include_str!("../templates/new-node/js/app.js"))],
        }
    }
}

const PIPELINE_TEMPLATE: &str = include_str!("../templates/new-node/pipeline.toml");

/// The longest name accepted: it is also a pipeline id, a file name and a crate name.
pub const MAX_NAME_LEN: usize = 64;

/// Names the tooling or Rust itself claims: folders of `plugins/` that are not nodes, the SDK's
/// library name, crate names cargo refuses or that would shadow a standard crate, and Rust
/// keywords (a crate named `type` does not build).
const RESERVED: &str = "\
    target target_debian fixtures sdk streamhost_node node_config js_toolchain wasm \
    std core alloc proc_macro test build deps examples incremental \
    as async await break const continue crate dyn else enum extern false fn for if impl in let \
    loop match mod move mut pub ref return self static struct super trait true type unsafe use \
    where while abstract become box do final gen macro override priv try typeof unsized virtual \
    yield";

/// Why `new-node` wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    #[error(
        "invalid node name {0:?}: use lowercase letters, digits and '_', starting with a letter, \
         at most {MAX_NAME_LEN} characters (it names the folder, the component NAME.wasm and \
         the pipeline)"
    )]
    InvalidName(String),
    #[error("{0:?} is reserved (a native node kind, a tooling folder or a Rust keyword)")]
    Reserved(String),
    #[error("{name:?} is taken: {by}")]
    Taken { name: String, by: String },
    #[error(
        "{0} does not look like a streamhost checkout (it needs plugins/Cargo.toml, plugins/sdk \
         and pipelines/): run new-node from the repository's root or pass --root"
    )]
    NotARoot(PathBuf),
    #[error("plugins/Cargo.toml has no `members = [...]` list to add the crate to")]
    NoMembersList,
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What `new-node` wrote, for the message it prints.
#[derive(Debug)]
pub struct Created {
    /// Every file written or changed, relative to the root.
    pub files: Vec<PathBuf>,
    /// The file to edit, relative to the root.
    pub source: PathBuf,
    /// What to do next, one step a line.
    pub next_steps: String,
}

/// Writes the node `name` in `lang` under `root` (a checkout: `plugins/`, `pipelines/`).
pub fn new_node(root: &Path, name: &str, lang: Lang) -> Result<Created, ScaffoldError> {
    check_name(name)?;
    let plugins = root.join("plugins");
    let pipelines = root.join("pipelines");
    let workspace = plugins.join("Cargo.toml");
    if !workspace.is_file() || !plugins.join("sdk").is_dir() || !pipelines.is_dir() {
        return Err(ScaffoldError::NotARoot(root.to_path_buf()));
    }
    check_free(&plugins, &pipelines, name)?;

    let node_dir = plugins.join(name);
    let manifest = pipelines.join(format!("{name}.toml"));
    // The workspace edit is worked out before anything is written, so that a checkout whose
    // Cargo.toml cannot take it gets no half-made node.
    let members = match lang {
        Lang::Rust => {
            let text = read(&workspace)?;
            Some(add_member(&text, name).ok_or(ScaffoldError::NoMembersList)?)
        }
        _ => None,
    };

    let fill = |template: &str| {
        template
            .replace("{{name}}", name)
            .replace("{{Type}}", &type_name(name))
            .replace("{{lang}}", lang.flag())
            .replace("{{language}}", lang.language())
            .replace("{{source}}", &format!("{name}/{}", lang.source()))
    };
    let mut created = Undo::default();
    let result = (|| {
        create_dir(&node_dir, &mut created)?;
        for (path, template) in lang.templates() {
            let file = node_dir.join(path);
            if let Some(parent) = file.parent() {
                if !parent.is_dir() {
                    create_dir(parent, &mut created)?;
                }
            }
            create_file(&file, &fill(template), &mut created)?;
        }
        create_file(&manifest, &fill(PIPELINE_TEMPLATE), &mut created)?;
        if let Some(members) = &members {
            replace_file(&workspace, members)?;
        }
        Ok(())
    })();
    if let Err(e) = result {
        created.undo();
        return Err(e);
    }

    let mut files: Vec<PathBuf> = lang
        .templates()
        .iter()
        .map(|(path, _)| Path::new("plugins").join(name).join(path))
        .collect();
    files.push(Path::new("pipelines").join(format!("{name}.toml")));
    if members.is_some() {
        files.push(PathBuf::from("plugins/Cargo.toml"));
    }
    let source = Path::new("plugins").join(name).join(lang.source());
    Ok(Created {
        next_steps: next_steps(name, lang, &source),
        files,
        source,
    })
}

/// `[a-z][a-z0-9_]*`, at most [`MAX_NAME_LEN`] bytes, and not reserved.
pub fn check_name(name: &str) -> Result<(), ScaffoldError> {
    let mut chars = name.chars();
    let well_formed = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= MAX_NAME_LEN;
    if !well_formed {
        return Err(ScaffoldError::InvalidName(name.to_string()));
    }
    if RESERVED.split_whitespace().any(|word| word == name) || NativeKind::from_name(name).is_some()
    {
        return Err(ScaffoldError::Reserved(name.to_string()));
    }
    Ok(())
}

/// Refuses a name that an existing folder, crate, component or pipeline already uses.
fn check_free(plugins: &Path, pipelines: &Path, name: &str) -> Result<(), ScaffoldError> {
    let taken = |by: String| ScaffoldError::Taken {
        name: name.to_string(),
        by,
    };
    // Folders of plugins/ (each builds to its name with '-' as '_') and the crates of its
    // workspace, fixtures included (`fixture-trap` builds to fixture_trap.wasm).
    for dir in [plugins.to_path_buf(), plugins.join("fixtures")] {
        for entry in list(&dir)? {
            let folder = entry.file_name().to_string_lossy().replace('-', "_");
            if folder == name {
                return Err(taken(format!("{} exists", entry.path().display())));
            }
            let cargo = entry.path().join("Cargo.toml");
            if let Some(package) = package_name(&cargo) {
                if package.replace('-', "_") == name {
                    return Err(taken(format!(
                        "the crate {package} ({}) builds to {name}.wasm",
                        cargo.display()
                    )));
                }
            }
        }
    }
    for entry in list(pipelines)? {
        let path = entry.path();
        if path.file_stem().is_some_and(|s| s == name) {
            return Err(taken(format!("{} exists", path.display())));
        }
        if path.extension().is_some_and(|e| e == "toml")
            && manifest_id(&path).as_deref() == Some(name)
        {
            return Err(taken(format!("{} has the id {name:?}", path.display())));
        }
    }
    Ok(())
}

fn list(dir: &Path) -> Result<Vec<std::fs::DirEntry>, ScaffoldError> {
    match std::fs::read_dir(dir) {
        Ok(entries) => Ok(entries.flatten().collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(ScaffoldError::Read {
            path: dir.to_path_buf(),
            source,
        }),
    }
}

/// `[package] name` of a Cargo.toml, if it is one that parses.
fn package_name(cargo: &Path) -> Option<String> {
    let table: toml::Table = std::fs::read_to_string(cargo).ok()?.parse().ok()?;
    table
        .get("package")?
        .get("name")?
        .as_str()
        .map(String::from)
}

/// The `id` of a pipeline manifest, if it parses.
fn manifest_id(path: &Path) -> Option<String> {
    let table: toml::Table = std::fs::read_to_string(path).ok()?.parse().ok()?;
    table.get("id")?.as_str().map(String::from)
}

/// `my_node` -> `MyNode`: the Rust template's type.
fn type_name(name: &str) -> String {
    name.split('_')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// The workspace manifest with `"name"` appended to its `members` list, comments and layout
/// kept; `None` when there is no `members = [` list.
fn add_member(cargo_toml: &str, name: &str) -> Option<String> {
    let start = cargo_toml
        .match_indices("members")
        .map(|(i, _)| i)
        .find(|&i| {
            (i == 0 || cargo_toml[..i].ends_with('\n'))
                && cargo_toml[i + "members".len()..]
                    .trim_start_matches([' ', '\t'])
                    .starts_with('=')
        })?;
    let open = start + cargo_toml[start..].find('[')?;
    let close = open + cargo_toml[open..].find(']')?;
    let inside = &cargo_toml[open + 1..close];
    let mut out = String::with_capacity(cargo_toml.len() + name.len() + 8);
    if inside.contains('\n') {
        // One member a line: a new line before the `]` line, indented as the last member.
        let line_start = cargo_toml[..close].rfind('\n')? + 1;
        let indent = inside
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .map(|l| &l[..l.len() - l.trim_start().len()])
            .unwrap_or("    ");
        let before = cargo_toml[..line_start].trim_end_matches('\n');
        let comma = if before.trim_end().ends_with([',', '[']) {
            ""
        } else {
            ","
        };
        out.push_str(before);
        let _ = write!(out, "{comma}\n{indent}\"{name}\",\n");
        out.push_str(&cargo_toml[line_start..]);
    } else {
        let before = cargo_toml[..close].trim_end();
        out.push_str(before);
        if before.ends_with('[') {
            let _ = write!(out, "\"{name}\"");
        } else if before.ends_with(',') {
            let _ = write!(out, " \"{name}\"");
        } else {
            let _ = write!(out, ", \"{name}\"");
        }
        out.push_str(&cargo_toml[close..]);
    }
    Some(out)
}

fn next_steps(name: &str, lang: Lang, source: &Path) -> String {
    let build = match lang {
        Lang::Rust => "cargo, for wasm32",
        Lang::Python => "componentize-py",
        Lang::Js => "componentize-js",
    };
    let mut steps = String::new();
    let _ = writeln!(
        steps,
        "  1. edit {} (process() answers each frame)",
        source.display()
    );
    let _ = writeln!(
        steps,
        "  2. make plugins        builds target/plugins/{name}.wasm ({build})"
    );
    let _ = writeln!(
        steps,
        "  3. a running server (make run) loads pipeline {name:?} by itself within seconds of \
         the build (hot reload); GET /pipelines shows whether it is ready, and why not"
    );
    let _ = writeln!(
        steps,
        "  4. stream to ws://127.0.0.1:8000/ws/video/stream?pipeline_id={name}, or pick {name} \
         in the live view at http://127.0.0.1:8000/"
    );
    if lang == Lang::Rust {
        let _ = writeln!(
            steps,
            "     unit tests run natively: cd plugins && cargo test -p {name}"
        );
    }
    steps
}

fn read(path: &Path) -> Result<String, ScaffoldError> {
    std::fs::read_to_string(path).map_err(|source| ScaffoldError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn create_dir(path: &Path, created: &mut Undo) -> Result<(), ScaffoldError> {
    std::fs::create_dir(path).map_err(|source| ScaffoldError::Write {
        path: path.to_path_buf(),
        source,
    })?;
    created.dirs.push(path.to_path_buf());
    Ok(())
}

/// Creates `path` with `text`; fails if it exists.
fn create_file(path: &Path, text: &str, created: &mut Undo) -> Result<(), ScaffoldError> {
    let error = |source| ScaffoldError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(error)?;
    created.files.push(path.to_path_buf());
    file.write_all(text.as_bytes()).map_err(error)
}

/// Replaces `path`'s contents through a rename, so a reader never sees half of it.
fn replace_file(path: &Path, text: &str) -> Result<(), ScaffoldError> {
    let error = |source| ScaffoldError::Write {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("toml.new-node");
    std::fs::write(&tmp, text).map_err(error)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        error(e)
    })
}

/// What one run created, removed again if the run fails part-way.
#[derive(Default)]
struct Undo {
    dirs: Vec<PathBuf>,
    files: Vec<PathBuf>,
}

impl Undo {
    fn undo(self) {
        for file in self.files.iter().rev() {
            let _ = std::fs::remove_file(file);
        }
        for dir in self.dirs.iter().rev() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const WORKSPACE: &str = "# comment kept\n[workspace]\nresolver = \"2\"\nmembers = [\n    \"node-config\",\n    \"sdk\",\n    \"frame-info\",\n]\n\n[workspace.package]\nversion = \"0.1.0\"\n";

    /// A minimal checkout: plugins/ with a workspace, the SDK folder, a crate, a fixture, a
    /// JavaScript node, and pipelines/ with one manifest.
    fn checkout() -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        let p = root.path();
        for dir in [
            "plugins/sdk",
            "plugins/frame-info",
            "plugins/fixtures/trap",
            "plugins/ocr-flags",
            "pipelines",
        ] {
            std::fs::create_dir_all(p.join(dir)).unwrap();
        }
        std::fs::write(p.join("plugins/Cargo.toml"), WORKSPACE).unwrap();
        std::fs::write(
            p.join("plugins/fixtures/trap/Cargo.toml"),
            "[package]\nname = \"fixture-trap\"\n",
        )
        .unwrap();
        std::fs::write(p.join("plugins/ocr-flags/app.js"), "").unwrap();
        std::fs::write(
            p.join("pipelines/frame_stats.toml"),
            "id = \"stats\"\n[[nodes]]\nid = \"decode\"\nkind = \"jpeg_decode\"\n",
        )
        .unwrap();
        root
    }

    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn names_are_lowercase_words_and_not_reserved() {
        for good in [
            "my_node",
            "a",
            "n2",
            "track_objects_v2",
            &"x".repeat(MAX_NAME_LEN),
        ] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "My_node",
            "my-node",
            "2fast",
            "_x",
            "a b",
            "a/b",
            "../x",
            "ñ",
            &"x".repeat(MAX_NAME_LEN + 1),
        ] {
            assert!(
                matches!(check_name(bad), Err(ScaffoldError::InvalidName(_))),
                "{bad:?}"
            );
        }
        for reserved in [
            "jpeg_decode",
            "onnx",
            "to_tensor",
            "wasm",
            "sdk",
            "target",
            "type",
            "std",
        ] {
            assert!(
                matches!(check_name(reserved), Err(ScaffoldError::Reserved(_))),
                "{reserved}"
            );
        }
    }

    #[test]
    fn each_language_writes_its_node_and_a_pipeline_running_it() {
        let root = checkout();
        let p = root.path();
        let py = new_node(p, "py_node", Lang::Python).unwrap();
        assert_eq!(py.source, Path::new("plugins/py_node/app.py"));
        assert_eq!(
            py.files,
            [
                PathBuf::from("plugins/py_node/app.py"),
                PathBuf::from("pipelines/py_node.toml")
            ]
        );
        let app = std::fs::read_to_string(p.join("plugins/py_node/app.py")).unwrap();
        assert!(
            app.contains("\"node\": \"py_node\"") && !app.contains("{{"),
            "{app}"
        );
        assert!(app.contains("class Node(exports.Node):"), "{app}");

        let js = new_node(p, "js_node", Lang::Js).unwrap();
        assert_eq!(js.source, Path::new("plugins/js_node/app.js"));
        let app = std::fs::read_to_string(p.join("plugins/js_node/app.js")).unwrap();
        assert!(
            app.contains("node: \"js_node\"") && !app.contains("{{"),
            "{app}"
        );

        let rust = new_node(p, "rust_node", Lang::Rust).unwrap();
        assert_eq!(rust.source, Path::new("plugins/rust_node/src/lib.rs"));
        assert_eq!(
            names_in(&p.join("plugins/rust_node")),
            ["Cargo.toml", "src"]
        );
        let lib = std::fs::read_to_string(p.join("plugins/rust_node/src/lib.rs")).unwrap();
        assert!(
            lib.contains("struct RustNode;") && lib.contains("export_node!(RustNode);"),
            "{lib}"
        );
        assert!(!lib.contains("{{"), "{lib}");
        let cargo = std::fs::read_to_string(p.join("plugins/rust_node/Cargo.toml")).unwrap();
        assert!(cargo.contains("name = \"rust_node\""), "{cargo}");
        assert!(rust.files.contains(&PathBuf::from("plugins/Cargo.toml")));
        // Only the Rust node joined the workspace, after the last member, comments kept.
        let workspace = std::fs::read_to_string(p.join("plugins/Cargo.toml")).unwrap();
        assert_eq!(
            workspace,
            WORKSPACE.replace("\"frame-info\",\n", "\"frame-info\",\n    \"rust_node\",\n")
        );

        let manifest: toml::Table = std::fs::read_to_string(p.join("pipelines/rust_node.toml"))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(manifest["id"].as_str(), Some("rust_node"));
        let nodes = manifest["nodes"].as_array().unwrap();
        assert_eq!(nodes[0]["kind"].as_str(), Some("jpeg_decode"));
        assert_eq!(nodes[1]["kind"].as_str(), Some("wasm"));
        assert_eq!(nodes[1]["component"].as_str(), Some("rust_node.wasm"));
        assert_eq!(nodes[1]["inputs"].as_array().unwrap().len(), 1);
        assert!(
            rust.next_steps.contains("make plugins"),
            "{}",
            rust.next_steps
        );
        assert_eq!(
            names_in(&p.join("pipelines")),
            [
                "frame_stats.toml",
                "js_node.toml",
                "py_node.toml",
                "rust_node.toml"
            ]
        );
    }

    #[test]
    fn refuses_to_overwrite_or_shadow_anything_and_writes_nothing_then() {
        let root = checkout();
        let p = root.path();
        let before_plugins = names_in(&p.join("plugins"));
        for (name, why) in [
            ("frame_info", "plugins/frame-info exists"),
            ("ocr_flags", "plugins/ocr-flags exists"),
            ("fixture_trap", "the crate fixture-trap"),
            ("frame_stats", "frame_stats.toml exists"),
            ("stats", "has the id \"stats\""),
        ] {
            for lang in [Lang::Rust, Lang::Python, Lang::Js] {
                let err = new_node(p, name, lang).unwrap_err();
                assert!(
                    matches!(&err, ScaffoldError::Taken { .. }) && err.to_string().contains(why),
                    "{name}: {err}"
                );
            }
        }
        assert_eq!(names_in(&p.join("plugins")), before_plugins);
        assert_eq!(
            std::fs::read_to_string(p.join("plugins/Cargo.toml")).unwrap(),
            WORKSPACE
        );
        // A second run of the same name is refused and leaves the first one's files alone.
        new_node(p, "mine", Lang::Python).unwrap();
        std::fs::write(p.join("plugins/mine/app.py"), "edited").unwrap();
        assert!(matches!(
            new_node(p, "mine", Lang::Rust),
            Err(ScaffoldError::Taken { .. })
        ));
        assert_eq!(
            std::fs::read_to_string(p.join("plugins/mine/app.py")).unwrap(),
            "edited"
        );
        // A stray pipeline file alone is enough to refuse, before any folder is made.
        std::fs::write(p.join("pipelines/later.toml"), "").unwrap();
        assert!(new_node(p, "later", Lang::Js).is_err());
        assert!(!p.join("plugins/later").exists());
    }

    #[test]
    fn a_failure_part_way_removes_what_it_made() {
        let root = checkout();
        let p = root.path();
        // The workspace edit is the last step; a directory where its temporary file goes makes
        // it fail after the node's folder and manifest were written.
        std::fs::create_dir(p.join("plugins/Cargo.toml.new-node")).unwrap();
        let result = new_node(p, "half", Lang::Rust);
        assert!(
            matches!(result, Err(ScaffoldError::Write { .. })),
            "{result:?}"
        );
        assert!(!p.join("plugins/half").exists());
        assert!(!p.join("pipelines/half.toml").exists());
        assert_eq!(
            std::fs::read_to_string(p.join("plugins/Cargo.toml")).unwrap(),
            WORKSPACE
        );
    }

    #[test]
    fn outside_a_checkout_nothing_is_written() {
        let root = tempfile::tempdir().unwrap();
        assert!(matches!(
            new_node(root.path(), "x", Lang::Python),
            Err(ScaffoldError::NotARoot(_))
        ));
        assert!(names_in(root.path()).is_empty());
    }

    #[test]
    fn members_are_appended_whatever_the_list_looks_like() {
        assert_eq!(
            add_member("[workspace]\nmembers = [\"a\", \"b\"]\n", "n").as_deref(),
            Some("[workspace]\nmembers = [\"a\", \"b\", \"n\"]\n")
        );
        assert_eq!(
            add_member("[workspace]\nmembers = []\n", "n").as_deref(),
            Some("[workspace]\nmembers = [\"n\"]\n")
        );
        assert_eq!(
            add_member("[workspace]\nmembers = [\n  \"a\"\n]\n", "n").as_deref(),
            Some("[workspace]\nmembers = [\n  \"a\",\n  \"n\",\n]\n")
        );
        assert_eq!(add_member("[workspace]\nexclude = [\"x\"]\n", "n"), None);
        // `default-members` is not `members`.
        assert_eq!(
            add_member("default-members = [\"a\"]\nmembers = [\"a\"]\n", "n").as_deref(),
            Some("default-members = [\"a\"]\nmembers = [\"a\", \"n\"]\n")
        );
        assert_eq!(type_name("my_node_2"), "MyNode2");
        assert_eq!(type_name("a__b"), "AB");
    }
}
