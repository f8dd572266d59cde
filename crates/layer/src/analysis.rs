//! Wasted space across an image's layers, as dive reports it: layers applied in order with their whiteouts give the
//! merged tree, and every file a later layer overwrites or deletes counts as wasted.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;

/// One entry of a layer, as far as the analysis needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnalysedEntry {
    pub path: String,
    pub is_file: bool,
    pub is_dir: bool,
    pub size: u64,
}

/// A path's wasted copies: how many were overwritten or deleted, and their bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waste {
    pub path: String,
    pub count: u64,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    /// The merged tree in path order: path → where its entry is (layer, position in that layer's list).
    pub merged: BTreeMap<String, Place>,
    /// Bytes of files in every layer, and of those overwritten or deleted later.
    pub total: u64,
    pub wasted: u64,
    /// Largest waste first (ties in the order they were found).
    pub wasted_list: Vec<Waste>,
    /// (layer, path) of every file copy that is wasted.
    pub wasted_keys: Vec<(usize, String)>,
    /// Share of file bytes that survive in the merged tree (1 for an image without files).
    pub efficiency: f64,
}

/// Where a merged entry comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    pub layer: usize,
    pub index: usize,
}

const OPAQUE: &str = ".wh..wh..opq";
const WHITEOUT: &str = ".wh.";

#[derive(Default)]
struct State {
    merged: BTreeMap<String, Place>,
    /// Size of every merged file (directories and links are not counted).
    file_size: HashMap<String, u64>,
    waste: Vec<Waste>,
    waste_at: HashMap<String, usize>,
    wasted_keys: Vec<(usize, String)>,
}

impl State {
    /// Remove `path`'s children (and `path` itself unless `children_only`), counting the files among them.
    fn drop(&mut self, path: &str, children_only: bool) {
        let mut gone: Vec<String> = Vec::new();
        if !children_only && self.merged.contains_key(path) {
            gone.push(path.to_string());
        }
        if path.is_empty() {
            gone.extend(self.merged.keys().cloned());
        } else {
            // Children sort between "path/" and "path0" ('0' follows '/').
            let lo = format!("{path}/");
            let hi = format!("{path}0");
            let range = self
                .merged
                .range::<String, _>((Bound::Included(&lo), Bound::Excluded(&hi)));
            gone.extend(range.map(|(k, _)| k.clone()));
        }
        for p in gone {
            let Some(place) = self.merged.remove(&p) else {
                continue;
            };
            if let Some(size) = self.file_size.remove(&p) {
                let i = *self.waste_at.entry(p.clone()).or_insert_with(|| {
                    self.waste.push(Waste {
                        path: p.clone(),
                        count: 0,
                        size: 0,
                    });
                    self.waste.len() - 1
                });
                self.waste[i].count += 1;
                self.waste[i].size += size;
                self.wasted_keys.push((place.layer, p));
            }
        }
    }
}

fn clean(path: &str) -> &str {
    let p = path
        .strip_prefix("./")
        .or_else(|| path.strip_prefix('/'))
        .unwrap_or(path);
    p.strip_suffix('/').unwrap_or(p)
}

/// Apply `layers` in order and measure what later layers waste.
pub fn analyse(layers: &[Vec<AnalysedEntry>]) -> Analysis {
    let mut st = State::default();
    let mut total = 0u64;
    for (layer, entries) in layers.iter().enumerate() {
        for (index, e) in entries.iter().enumerate() {
            let path = clean(&e.path);
            let (dir, base) = match path.rfind('/') {
                Some(i) => (&path[..i], &path[i + 1..]),
                None => ("", path),
            };
            if base == OPAQUE {
                st.drop(dir, true);
                continue;
            }
            if let Some(name) = base.strip_prefix(WHITEOUT) {
                let target = if dir.is_empty() {
                    name.to_string()
                } else {
                    format!("{dir}/{name}")
                };
                st.drop(&target, false);
                continue;
            }
            if e.is_file {
                total += e.size;
            }
            if !e.is_dir && st.merged.contains_key(path) {
                st.drop(path, false);
            }
            if e.is_file {
                st.file_size.insert(path.to_string(), e.size);
            } else {
                st.file_size.remove(path);
            }
            st.merged.insert(path.to_string(), Place { layer, index });
        }
    }
    let wasted = st.waste.iter().map(|w| w.size).sum();
    let mut wasted_list = st.waste;
    wasted_list.sort_by_key(|w| std::cmp::Reverse(w.size));
    Analysis {
        merged: st.merged,
        total,
        wasted,
        wasted_list,
        wasted_keys: st.wasted_keys,
        efficiency: if total == 0 {
            1.0
        } else {
            (total - wasted) as f64 / total as f64
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(path: &str, size: u64) -> AnalysedEntry {
        AnalysedEntry {
            path: path.into(),
            is_file: true,
            is_dir: false,
            size,
        }
    }
    fn d(path: &str) -> AnalysedEntry {
        AnalysedEntry {
            path: path.into(),
            is_file: false,
            is_dir: true,
            size: 0,
        }
    }

    #[test]
    fn overwritten_and_whited_out_files_are_wasted() {
        let r = analyse(&[
            vec![d("app"), f("app/big.bin", 1000), f("app/conf", 10)],
            vec![f("app/conf", 20), f("app/.wh.big.bin", 0)],
            vec![d("cache"), f("cache/a", 5)],
            vec![f("cache/.wh..wh..opq", 0), f("cache/b", 7)],
        ]);
        assert_eq!(r.total, 1000 + 10 + 20 + 5 + 7);
        assert_eq!(r.wasted, 1000 + 10 + 5);
        let merged: Vec<&str> = r.merged.keys().map(String::as_str).collect();
        assert_eq!(merged, ["app", "app/conf", "cache", "cache/b"]);
        assert!((r.efficiency - 27.0 / 1042.0).abs() < 1e-12);
        assert_eq!(r.wasted_list[0].path, "app/big.bin");
        assert!(r.wasted_keys.contains(&(0, "app/conf".to_string())));
    }

    #[test]
    fn a_file_replacing_a_directory_wastes_its_files_and_siblings_survive() {
        let r = analyse(&[
            vec![d("a"), f("a/x", 3), f("a-b", 4), f("a0", 5)],
            vec![f("./a", 1)],
        ]);
        assert_eq!(r.wasted, 3);
        let merged: Vec<&str> = r.merged.keys().map(String::as_str).collect();
        assert_eq!(merged, ["a", "a-b", "a0"]);
        assert_eq!(r.merged["a"], Place { layer: 1, index: 0 });
    }

    #[test]
    fn no_files_is_fully_efficient() {
        assert_eq!(analyse(&[vec![d("x")]]).efficiency, 1.0);
    }
}
