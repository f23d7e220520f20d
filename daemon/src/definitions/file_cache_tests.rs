//! The cache reuses a verdict only while nothing it was read from changed:
//! each test changes one input and looks at which files were checked.

use super::*;
use crate::definitions::ChannelCatalog;
use std::fs;

/// A deliveries folder `d/` with an audience root `lists/` beside it.
struct Tree {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

impl Tree {
    fn new() -> Tree {
        let tmp = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(tmp.path()).unwrap();
        fs::create_dir_all(root.join("d")).unwrap();
        fs::create_dir_all(root.join("lists")).unwrap();
        Tree { _tmp: tmp, root }
    }

    /// Writes `rel` in place (same inode when it exists).
    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let path = self.root.join(rel);
        fs::write(&path, text).unwrap();
        path
    }

    fn ctx(&self) -> ValidationContext {
        ValidationContext {
            deliveries_dir: self.root.join("d"),
            audience_roots: vec![self.root.join("lists")],
            channels: ChannelCatalog::builtin(),
        }
    }
}

/// A scan long after the files were written: every file has settled.
fn later() -> SystemTime {
    SystemTime::now() + Duration::from_secs(3600)
}

fn inline(body: &str) -> String {
    format!(
        "channel: outbox\naudience:\n  recipients:\n    - {{ id: r1 }}\ncontent:\n  body: {body}\n"
    )
}

/// A delivery reading `lists/<csv>` and greeting its `name` column.
fn from_csv(csv: &str) -> String {
    format!(
        "channel: outbox\naudience:\n  file: ../lists/{csv}\ncontent:\n  body: \"Hi {{{{ name }}}}\"\n"
    )
}

fn ids(loaded: &Loaded<Arc<Delivery>>) -> Vec<&str> {
    loaded.deliveries.iter().map(|d| d.id()).collect()
}

fn messages(loaded: &Loaded<Arc<Delivery>>) -> Vec<&str> {
    loaded.errors.iter().map(|e| e.message.as_str()).collect()
}

/// Sets the modification time of `path` to `secs` after the epoch.
fn set_mtime(path: &Path, secs: u64) {
    let file = fs::File::options().write(true).open(path).unwrap();
    file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
        .unwrap();
}

#[test]
fn an_unchanged_folder_is_not_read_again() {
    let tree = Tree::new();
    tree.write("d/a.yaml", &inline("one"));
    tree.write("d/b.yaml", &inline("two"));
    tree.write("lists/vip.csv", "id,name\nv1,Ana\n");
    tree.write("d/vip.yaml", &from_csv("vip.csv"));
    tree.write("d/bad.yaml", "channel: [");
    let mut cache = FileCache::default();
    let first = cache.load(&tree.ctx(), later());
    assert_eq!(cache.last_scan(), settled(4, 0));

    let second = cache.load(&tree.ctx(), later());
    assert_eq!(cache.last_scan(), settled(0, 4));
    assert_eq!(ids(&second), ["a", "b", "vip"]);
    // The same shared deliveries, and the failing file's errors again.
    assert!(Arc::ptr_eq(&first.deliveries[0], &second.deliveries[0]));
    assert_eq!(first.errors, second.errors);
    assert_eq!(second.errors.len(), 1);
}

/// A scan's counts when no file was too fresh to keep.
fn settled(checked: usize, reused: usize) -> ScanCount {
    ScanCount {
        checked,
        reused,
        fresh: 0,
    }
}

/// A cache that has scanned the tree once, as long after its writes.
fn scanned(tree: &Tree) -> FileCache {
    let mut cache = FileCache::default();
    cache.load(&tree.ctx(), later());
    cache
}

#[test]
fn an_edit_that_keeps_the_size_is_seen_and_only_that_file_is_read() {
    let tree = Tree::new();
    let a = tree.write("d/a.yaml", &inline("one"));
    tree.write("d/b.yaml", &inline("two"));
    let mut cache = scanned(&tree);

    tree.write("d/a.yaml", &inline("ONE"));
    set_mtime(&a, 1_000_000);
    let loaded = cache.load(&tree.ctx(), later());
    assert_eq!(cache.last_scan(), settled(1, 1));
    assert_eq!(loaded.deliveries[0].content().fields["body"], "ONE");
}

#[test]
fn a_changed_audience_header_checks_its_delivery_again() {
    let tree = Tree::new();
    tree.write("lists/vip.csv", "id,name\nv1,Ana\n");
    tree.write("d/vip.yaml", &from_csv("vip.csv"));
    tree.write("d/other.yaml", &inline("two"));
    let mut cache = FileCache::default();
    assert_eq!(ids(&cache.load(&tree.ctx(), later())), ["other", "vip"]);

    tree.write("lists/vip.csv", "id,first\nv1,Ana\n");
    let loaded = cache.load(&tree.ctx(), later());
    assert_eq!(cache.last_scan(), settled(1, 1));
    assert_eq!(ids(&loaded), ["other"]);
    let errors = messages(&loaded);
    assert!(
        errors.len() == 1 && errors[0].contains("name"),
        "{errors:?}"
    );
}

#[test]
fn an_audience_that_appears_or_a_repointed_link_checks_the_delivery_again() {
    let tree = Tree::new();
    tree.write("d/vip.yaml", &from_csv("current.csv"));
    let mut cache = FileCache::default();
    let loaded = cache.load(&tree.ctx(), later());
    assert!(
        messages(&loaded)[0].contains("cannot be found"),
        "{:?}",
        messages(&loaded)
    );

    // The missing file appears, as a link to a good list.
    tree.write("lists/good.csv", "id,name\nv1,Ana\n");
    tree.write("lists/bad.csv", "id,nom\nv1,Ana\n");
    std::os::unix::fs::symlink("good.csv", tree.root.join("lists/current.csv")).unwrap();
    let loaded = cache.load(&tree.ctx(), later());
    assert_eq!(cache.last_scan().checked, 1);
    assert_eq!(ids(&loaded), ["vip"]);

    // The link now leads to an older file that lacks the column.
    fs::remove_file(tree.root.join("lists/current.csv")).unwrap();
    std::os::unix::fs::symlink("bad.csv", tree.root.join("lists/current.csv")).unwrap();
    let loaded = cache.load(&tree.ctx(), later());
    assert_eq!(cache.last_scan().checked, 1);
    assert!(ids(&loaded).is_empty());
}

#[test]
fn an_edited_template_file_checks_its_delivery_again() {
    let tree = Tree::new();
    tree.write("d/hello.txt", "Hi {{ name }}");
    tree.write(
        "d/mail.yaml",
        "channel: email\naudience:\n  recipients:\n    - { id: r1, email: a@x.example, name: Ana }\ncontent:\n  from: s@x.example\n  subject: Hello\n  text_file: hello.txt\n",
    );
    let mut cache = FileCache::default();
    assert_eq!(ids(&cache.load(&tree.ctx(), later())), ["mail"]);

    tree.write("d/hello.txt", "Hi {{ nom }}!");
    let loaded = cache.load(&tree.ctx(), later());
    assert_eq!(cache.last_scan().checked, 1);
    let errors = messages(&loaded);
    assert!(errors.len() == 1 && errors[0].contains("nom"), "{errors:?}");
}

#[test]
fn another_context_checks_every_file_again() {
    let tree = Tree::new();
    tree.write("d/a.yaml", &inline("one"));
    tree.write("d/b.yaml", &inline("two"));
    let mut cache = scanned(&tree);

    // Other channels: the same files may now fail, or pass.
    let mut ctx = tree.ctx();
    ctx.channels = ChannelCatalog::from_channels([]);
    let loaded = cache.load(&ctx, later());
    assert_eq!(cache.last_scan(), settled(2, 0));
    assert_eq!(loaded.errors.len(), 2, "outbox is no longer served");

    // Other roots.
    fs::create_dir_all(tree.root.join("more")).unwrap();
    ctx.audience_roots.push(tree.root.join("more"));
    cache.load(&ctx, later());
    assert_eq!(cache.last_scan(), settled(2, 0));
    cache.load(&ctx, later());
    assert_eq!(cache.last_scan(), settled(0, 2));
}

#[test]
fn a_removed_file_leaves_the_result_and_the_cache() {
    let tree = Tree::new();
    let a = tree.write("d/a.yaml", &inline("one"));
    tree.write("d/b.yaml", &inline("two"));
    let mut cache = scanned(&tree);

    fs::remove_file(a).unwrap();
    let loaded = cache.load(&tree.ctx(), later());
    assert_eq!(ids(&loaded), ["b"]);
    assert_eq!(cache.last_scan(), settled(0, 1));
    assert_eq!(cache.entries.len(), 1);
}

#[test]
fn a_file_replaced_by_rename_with_the_same_size_and_mtime_is_checked_again() {
    let tree = Tree::new();
    let a = tree.write("d/a.yaml", &inline("one"));
    let mut cache = scanned(&tree);

    let old = fs::metadata(&a).unwrap();
    let temp = tree.write("d/.a.yaml.new", &inline("ONE"));
    fs::File::options()
        .write(true)
        .open(&temp)
        .unwrap()
        .set_modified(old.modified().unwrap())
        .unwrap();
    fs::rename(&temp, &a).unwrap();
    let new = fs::metadata(&a).unwrap();
    assert_eq!(
        (new.len(), new.modified().unwrap()),
        (old.len(), old.modified().unwrap())
    );

    let loaded = cache.load(&tree.ctx(), later());
    assert_eq!(cache.last_scan().checked, 1);
    assert_eq!(loaded.deliveries[0].content().fields["body"], "ONE");
}

#[test]
fn a_file_changed_just_before_a_scan_is_read_again_by_the_next() {
    let tree = Tree::new();
    let a = tree.write("d/a.yaml", &inline("one"));
    // A scan that starts within SETTLE of the write, whatever the load
    // on the test machine: the write may share the clock's tick with a
    // later one that the stamp would not show.
    let meta = fs::metadata(&a).unwrap();
    let changed =
        SystemTime::UNIX_EPOCH + Duration::new(meta.ctime() as u64, meta.ctime_nsec() as u32);
    let started = changed + SETTLE / 2;
    let mut cache = FileCache::default();
    cache.load(&tree.ctx(), started);
    cache.load(&tree.ctx(), started);
    assert_eq!(
        cache.last_scan(),
        ScanCount {
            checked: 1,
            reused: 0,
            fresh: 1
        },
        "read again, and counted fresh so that the folder reads it once settled"
    );

    // Once the file has settled, its verdict is kept.
    let started = changed + SETTLE + Duration::from_millis(1);
    cache.load(&tree.ctx(), started);
    cache.load(&tree.ctx(), started);
    assert_eq!(cache.last_scan(), settled(0, 1));
}

#[test]
fn duplicate_ids_are_refused_among_reused_verdicts_too() {
    let tree = Tree::new();
    let a = tree.write("d/a.yaml", &format!("id: same\n{}", inline("one")));
    tree.write("d/b.yaml", &format!("id: same\n{}", inline("two")));
    let mut cache = scanned(&tree);
    let loaded = cache.load(&tree.ctx(), later());
    assert_eq!(cache.last_scan().reused, 2);
    assert_eq!(loaded.deliveries.len(), 1);
    assert!(messages(&loaded)[0].contains("is already used by"));

    fs::remove_file(a).unwrap();
    let loaded = cache.load(&tree.ctx(), later());
    assert_eq!(cache.last_scan(), settled(0, 1));
    assert_eq!(loaded.deliveries[0].content().fields["body"], "two");
    assert!(loaded.errors.is_empty());
}
