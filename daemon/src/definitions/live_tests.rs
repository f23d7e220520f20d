//! The live folder under a reload: new audience roots, a removed one, a new
//! deliveries folder (and one that does not exist), and the watch moving.

use super::*;
use crate::definitions::ChannelCatalog;
use std::fs;

/// A temporary tree: `deliveries/`, `other/` (a second deliveries folder)
/// and `lists/` (an audience root), with `vip.yaml` reading `../lists/vip.csv`.
struct Tree {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

impl Tree {
    fn new() -> Tree {
        let tmp = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(tmp.path()).unwrap();
        let tree = Tree { _tmp: tmp, root };
        tree.write("lists/vip.csv", "id,name\nv1,Ana\n");
        tree.write(
            "deliveries/vip.yaml",
            "channel: outbox\naudience:\n  file: ../lists/vip.csv\ncontent:\n  body: \"Hi {{ name }}\"\n",
        );
        tree.write("other/two.yaml", &inline("two"));
        tree
    }

    fn write(&self, rel: &str, text: &str) {
        let path = self.root.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        // Temp then rename, so a watcher never reads half a file.
        let temp = path.with_extension("tmp~");
        fs::write(&temp, text).unwrap();
        fs::rename(&temp, &path).unwrap();
    }

    /// Checks against `deliveries_dir` (relative) and the `roots` (relative).
    fn ctx(&self, deliveries_dir: &str, roots: &[&str]) -> ValidationContext {
        ValidationContext {
            deliveries_dir: self.root.join(deliveries_dir),
            audience_roots: roots.iter().map(|r| self.root.join(r)).collect(),
            channels: ChannelCatalog::builtin(),
        }
    }
}

fn inline(body: &str) -> String {
    format!(
        "channel: outbox\naudience:\n  recipients:\n    - {{ id: r1 }}\ncontent:\n  body: {body}\n"
    )
}

fn ids(folder: &LiveFolder) -> Vec<String> {
    folder.deliveries().borrow().keys().cloned().collect()
}

fn error_messages(folder: &LiveFolder) -> Vec<String> {
    folder
        .errors()
        .borrow()
        .iter()
        .map(|e| e.message.clone())
        .collect()
}

#[test]
fn a_delivery_whose_audience_is_in_a_newly_added_root_loads_on_the_next_rescan() {
    let tree = Tree::new();
    let mut folder = LiveFolder::new(tree.ctx("deliveries", &[]));
    folder.rescan();
    assert!(ids(&folder).is_empty());
    let errors = error_messages(&folder);
    assert!(
        errors.len() == 1 && errors[0].contains("leads outside the allowed folders"),
        "{errors:?}"
    );

    folder.set_context(tree.ctx("deliveries", &["lists"]));
    folder.rescan();
    assert_eq!(ids(&folder), ["vip"]);
    assert_eq!(error_messages(&folder), Vec::<String>::new());
}

#[test]
fn a_removed_root_reports_the_file_and_keeps_its_last_good_version() {
    // deliveries.md: an invalid file is reported; an earlier valid version
    // of it stays active until the file is fixed.
    let tree = Tree::new();
    let mut folder = LiveFolder::new(tree.ctx("deliveries", &["lists"]));
    folder.rescan();
    assert_eq!(ids(&folder), ["vip"]);

    folder.set_context(tree.ctx("deliveries", &[]));
    folder.rescan();
    assert_eq!(ids(&folder), ["vip"], "the last good version stays");
    let errors = error_messages(&folder);
    assert!(
        errors.len() == 1 && errors[0].contains("add its folder to `audience_roots`"),
        "{errors:?}"
    );
}

#[test]
fn a_new_deliveries_dir_replaces_the_deliveries_of_the_old_one() {
    let tree = Tree::new();
    let mut folder = LiveFolder::new(tree.ctx("deliveries", &["lists"]));
    folder.rescan();
    assert_eq!(ids(&folder), ["vip"]);

    folder.set_context(tree.ctx("other", &["lists"]));
    folder.rescan();
    assert_eq!(ids(&folder), ["two"]);
    assert_eq!(folder.context().deliveries_dir, tree.root.join("other"));
}

#[test]
fn a_reloaded_deliveries_dir_that_is_not_a_folder_keeps_the_current_one() {
    let tree = Tree::new();
    let mut folder = LiveFolder::new(tree.ctx("deliveries", &[]));
    folder.rescan();
    // The roots of the same reload are still taken.
    folder.set_context(tree.ctx("deliverie", &["lists"]));
    assert_eq!(
        folder.context().deliveries_dir,
        tree.root.join("deliveries")
    );
    folder.rescan();
    assert_eq!(ids(&folder), ["vip"]);
}

/// Waits up to 5 s for the loaded ids to be `want`.
async fn wait_for_ids(deliveries: &mut watch::Receiver<Deliveries>, want: &[&str]) {
    let wanted = |d: &Deliveries| d.keys().map(String::as_str).eq(want.iter().copied());
    let waited = tokio::time::timeout(Duration::from_secs(5), deliveries.wait_for(wanted));
    let loaded = matches!(waited.await, Ok(Ok(_)));
    assert!(
        loaded,
        "loaded {:?}, not {want:?}, after 5 s",
        deliveries.borrow().keys().collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_reload_to_a_new_deliveries_dir_the_watch_follows_the_new_folder() {
    let tree = Tree::new();
    let mut folder = LiveFolder::new(tree.ctx("deliveries", &["lists"]));
    folder.rescan();
    let mut deliveries = folder.deliveries();
    let (requests, rescans) = mpsc::channel(1);
    let stopping = CancellationToken::new();
    let watch = folder.start_watch();
    let watching = tokio::spawn(folder.watch(watch, rescans, stopping.clone()));

    let (done, finished) = oneshot::channel();
    let context = Some(tree.ctx("other", &["lists"]));
    requests
        .send(RescanRequest { context, done })
        .await
        .unwrap();
    finished.await.unwrap();
    assert_eq!(
        deliveries.borrow_and_update().keys().collect::<Vec<_>>(),
        ["two"]
    );

    // No signal this time: the watch on the new folder sees the new file
    // (the safety net would take RESCAN_EVERY, far past the wait).
    tree.write("other/three.yaml", &inline("three"));
    wait_for_ids(&mut deliveries, &["three", "two"]).await;
    stopping.cancel();
    watching.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_written_between_the_first_scan_and_the_watch_loop_is_seen() {
    let tree = Tree::new();
    let mut folder = LiveFolder::new(tree.ctx("deliveries", &["lists"]));
    // As the daemon starts: the watch first, then the first scan, then
    // (after other start-up work) the loop.
    let watch = folder.start_watch();
    folder.rescan();
    let mut deliveries = folder.deliveries();
    tree.write("deliveries/late.yaml", &inline("late"));
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let (_requests, rescans) = mpsc::channel(1);
    let stopping = CancellationToken::new();
    let watching = tokio::spawn(folder.watch(watch, rescans, stopping.clone()));
    // Well before RESCAN_EVERY: the event was kept for the loop.
    wait_for_ids(&mut deliveries, &["late", "vip"]).await;
    stopping.cancel();
    watching.await.unwrap();
}

/// Rescans as if long after the files were written, so that their
/// verdicts are kept for the next rescan.
fn rescan_later(folder: &mut LiveFolder) {
    folder.rescan_started(SystemTime::now() + Duration::from_secs(3600));
}

#[test]
fn an_unchanged_folder_is_not_read_again_and_an_edit_or_a_removal_is_published() {
    let tree = Tree::new();
    tree.write("deliveries/two.yaml", &inline("two"));
    let mut folder = LiveFolder::new(tree.ctx("deliveries", &["lists"]));
    rescan_later(&mut folder);
    let mut deliveries = folder.deliveries();
    deliveries.mark_unchanged();
    rescan_later(&mut folder);
    assert_eq!(folder.cache.last_scan().checked, 0);
    assert!(
        !deliveries.has_changed().unwrap(),
        "nothing new is published"
    );

    tree.write("deliveries/two.yaml", &inline("deux"));
    rescan_later(&mut folder);
    assert_eq!(folder.cache.last_scan().checked, 1);
    assert!(deliveries.has_changed().unwrap());
    let body = |d: &Deliveries| d["two"].content().fields["body"].clone();
    assert_eq!(body(&deliveries.borrow_and_update()), "deux");

    fs::remove_file(tree.root.join("deliveries/two.yaml")).unwrap();
    rescan_later(&mut folder);
    assert_eq!(ids(&folder), ["vip"]);
}

#[test]
fn a_cached_invalid_file_reports_its_errors_every_rescan_and_keeps_its_last_good_version() {
    let tree = Tree::new();
    let mut folder = LiveFolder::new(tree.ctx("deliveries", &["lists"]));
    rescan_later(&mut folder);
    tree.write("deliveries/vip.yaml", "channel: [");
    rescan_later(&mut folder);
    rescan_later(&mut folder);
    assert_eq!(folder.cache.last_scan().checked, 0);
    assert_eq!(ids(&folder), ["vip"], "the last good version stays");
    assert_eq!(error_messages(&folder).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_too_fresh_to_cache_are_read_again_once_settled_not_at_the_safety_net() {
    let tree = Tree::new();
    let mut folder = LiveFolder::new(tree.ctx("deliveries", &["lists"]));
    let watch = folder.start_watch();
    folder.rescan();
    let mut scans = folder.scans();
    assert!(scans.borrow_and_update().fresh > 0, "just written");
    let (_requests, rescans) = mpsc::channel(1);
    let stopping = CancellationToken::new();
    let watching = tokio::spawn(folder.watch(watch, rescans, stopping.clone()));
    // Well before RESCAN_EVERY: SETTLE after the files' last change.
    let settled = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            scans.changed().await.unwrap();
            let scan = *scans.borrow_and_update();
            if scan.fresh == 0 {
                return scan;
            }
        }
    })
    .await
    .expect("a scan once the files settled");
    assert_eq!(
        (settled.checked, settled.reused),
        (1, 0),
        "vip.yaml, read once more and kept"
    );
    stopping.cancel();
    watching.await.unwrap();
}

#[test]
fn a_file_error_is_logged_as_a_sentence_with_the_error_in_its_own_field() {
    let captured = crate::http::tests::logs::Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_writer(captured.clone())
        .finish();
    // With a single dispatcher registered, tracing computes the interest
    // of a log line first met on another test's thread from that thread's
    // (empty) subscriber and caches "never"; a second one, kept alive,
    // makes it ask every registered dispatcher, this test's too.
    let _second = tracing::Dispatch::new(tracing_subscriber::registry());
    let _guard = tracing::subscriber::set_default(subscriber);
    let tree = Tree::new();
    tree.write("deliveries/typo.yaml", "shedule: 1\n");
    let mut folder = LiveFolder::new(tree.ctx("deliveries", &["lists"]));
    rescan_later(&mut folder);
    let log = captured.text();
    let line: serde_json::Value = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|l| l["fields"]["message"] == "Delivery file error.")
        .unwrap_or_else(|| panic!("no `Delivery file error.` line in {log}"));
    let error = line["fields"]["error"].as_str().unwrap_or_default();
    assert!(error.contains("unknown field `shedule`"), "{line}");
    assert_eq!(line["fields"]["line"], 1, "{line}");
}
