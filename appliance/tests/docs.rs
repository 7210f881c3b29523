//! The documentation describes the code as it is: ARCHITECTURE.md's tile, link and crate
//! tables and README's layout and configuration sections are checked against the wiring
//! declaration, the workspace's manifests, the repository's folders and `config default`.
//! When one fails, regenerate the text from the code (the messages say how).

use appliance::Config;
use appliance::config::DEFAULT_TOML;
use appliance::wiring::Wiring;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the repository holds this crate")
        .to_path_buf()
}

fn read(name: &str) -> String {
    std::fs::read_to_string(repo().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The text between `<!-- begin NAME -->` and `<!-- end NAME -->` in ARCHITECTURE.md.
fn doc_block(name: &str) -> String {
    let doc = read("ARCHITECTURE.md");
    let begin = format!("<!-- begin {name} -->\n");
    let end = format!("<!-- end {name} -->");
    let from = doc.find(&begin).expect("begin marker") + begin.len();
    let to = doc[from..].find(&end).expect("end marker") + from;
    doc[from..to].to_string()
}

/// ARCHITECTURE.md shows the default configuration's wiring as built: regenerate its tables
/// with `gigacompute topology --tables --config F` (F: `[runtime]\nworker_cores = [1, 0]`).
#[test]
fn architecture_tables_are_the_wiring() {
    let mut c = Config::default();
    // Cores in the documentation do not depend on the machine that runs the test.
    c.runtime.worker_cores = vec![1, 0];
    let w = Wiring::from_config(&c);
    assert_eq!(doc_block("tiles"), w.tiles_table());
    assert_eq!(doc_block("links"), w.links_table());
}

/// The workspace crates a manifest depends on (path or workspace dependencies on members).
fn workspace_deps(manifest: &Path, members: &BTreeSet<String>) -> BTreeSet<String> {
    let text = std::fs::read_to_string(manifest).unwrap();
    let mut deps = BTreeSet::new();
    let mut in_deps = false;
    for line in text.lines() {
        if line.starts_with('[') {
            in_deps = line == "[dependencies]";
            continue;
        }
        let name = line.split(['=', '.', ' ']).next().unwrap_or("");
        if in_deps && members.contains(name) {
            deps.insert(name.to_string());
        }
    }
    deps
}

/// ARCHITECTURE.md's crate table is the workspace's dependency graph.
#[test]
fn crate_table_is_the_dependency_graph() {
    let root = read("Cargo.toml");
    let list = &root[root.find("members = [").expect("members")..];
    let list = &list[..list.find(']').unwrap()];
    let members: BTreeSet<String> = list
        .split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect();
    let mut table = String::from("| crate | depends on (workspace crates) |\n|---|---|\n");
    let row = |name: &str, deps: BTreeSet<String>| {
        let deps: Vec<String> = deps.into_iter().collect();
        let deps = if deps.is_empty() {
            "—".to_string()
        } else {
            deps.join(", ")
        };
        format!("| {name} | {deps} |\n")
    };
    table += &row(
        "gigacompute (the binary)",
        workspace_deps(&repo().join("Cargo.toml"), &members),
    );
    for m in &members {
        table += &row(
            m,
            workspace_deps(&repo().join(m).join("Cargo.toml"), &members),
        );
    }
    assert_eq!(
        doc_block("crates"),
        table,
        "ARCHITECTURE.md's crate table differs from the manifests; replace it with the table above"
    );
}

/// README's layout section names every top-level folder of the repository.
#[test]
fn layout_lists_every_top_level_folder() {
    let readme = read("README.md");
    let layout = &readme[readme.find("## Layout").expect("a layout section")..];
    // Build output, local state and caches, all in .gitignore.
    let ignored = [
        "target",
        ".git",
        "gigacompute-data",
        ".vagrant",
        ".venv",
        ".pytest_cache",
    ];
    for entry in std::fs::read_dir(repo()).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if !entry.file_type().unwrap().is_dir() || ignored.contains(&name.as_str()) {
            continue;
        }
        assert!(
            layout.contains(&format!("- `{name}/`")),
            "README's layout does not list {name}/"
        );
    }
}

/// README's configuration section shows the file as `gigacompute config default` prints it.
#[test]
fn readme_shows_the_documented_default() {
    assert!(
        read("README.md").contains(&format!("```toml\n{DEFAULT_TOML}```")),
        "README.md's ## Configuration block differs from `gigacompute config default`"
    );
}
