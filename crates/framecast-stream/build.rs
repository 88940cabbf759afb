//! Embeds every file under `viewer/` (written by the viewer work; may be absent or empty) as
//! `VIEWER_FILES: &[(&str, &[u8])]`, so files added there are served without code changes.

use std::path::{Path, PathBuf};

fn walk(dir: &Path, root: &Path, out: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        if path.is_dir() {
            if name == "node_modules" || name == "tests" {
                continue;
            }
            walk(&path, root, out);
        } else if let Ok(rel) = path.strip_prefix(root) {
            let rel = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            out.push((rel, path.canonicalize().unwrap_or(path)));
        }
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let viewer = manifest.join("viewer");
    println!("cargo:rerun-if-changed=viewer");
    println!("cargo:rerun-if-changed=build.rs");
    let mut files = Vec::new();
    walk(&viewer, &viewer, &mut files);
    files.sort();
    let mut code = String::from("/// Files under `viewer/`, by path relative to it.\npub static VIEWER_FILES: &[(&str, &[u8])] = &[\n");
    for (rel, path) in &files {
        code.push_str(&format!(
            "    ({:?}, include_bytes!({:?})),\n",
            rel,
            path.to_string_lossy()
        ));
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("viewer_files.rs");
    std::fs::write(out, code).unwrap();
}
