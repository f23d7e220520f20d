use super::*;
use crate::definitions::catalog::ChannelCatalog;
use crate::definitions::{Audience, When};
use std::fs;

struct Dir {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

impl Dir {
    fn new() -> Dir {
        let tmp = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(tmp.path()).unwrap();
        Dir { _tmp: tmp, root }
    }
    fn write(&self, rel: &str, text: impl AsRef<[u8]>) -> PathBuf {
        let path = self.root.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, text).unwrap();
        path
    }
    fn ctx(&self) -> ValidationContext {
        ValidationContext {
            deliveries_dir: self.root.clone(),
            audience_roots: Vec::new(),
            channels: ChannelCatalog::builtin(),
        }
    }
    fn errors(&self, rel: &str, text: &str) -> Vec<String> {
        let path = self.write(rel, text);
        match load_file(&path, &self.ctx()) {
            Ok(d) => panic!("expected errors, got {d:?}"),
            Err(errors) => errors
                .iter()
                .map(|e| {
                    e.to_string()
                        .replace(&format!("{}/", self.root.display()), "")
                })
                .collect(),
        }
    }
}

const SMS: &str = "channel: sms
audience:
  recipients:
    - { id: c1, phone: \"+33612345678\", first_name: Ana }
    - { id: c2, phone: \"+33698765432\", first_name: Bo, vip: true, score: 3 }
content:
  from: SHOP
  body: \"Hi {{ first_name }}, your order has shipped.\"
schedule:
  at: 2026-12-01T09:00:00+01:00
";

#[test]
fn the_spec_sms_example_loads_with_its_file_stem_as_id() {
    let d = Dir::new();
    let path = d.write("order-shipped.yaml", SMS);
    let delivery = load_file(&path, &d.ctx()).unwrap();
    assert_eq!(delivery.id(), "order-shipped");
    assert_eq!(delivery.channel(), "sms");
    assert!(matches!(delivery.schedule().when(), When::At { .. }));
    let rows: Vec<_> = delivery.audience().rows().map(Result::unwrap).collect();
    assert_eq!(rows[1].fields["vip"], "true");
    assert_eq!(rows[1].fields["score"], "3");
    assert!(delivery.definition_hash().starts_with("sha256:"));
    assert_eq!(delivery.definition_hash().len(), 7 + 64);
}

#[test]
fn the_spec_email_example_loads_with_csv_and_html_file_inlined() {
    let d = Dir::new();
    d.write(
        "audiences/subscribers.csv",
        "id,email,first_name,link\nc1,ana@x.example,Ana,https://x.example\n",
    );
    d.write(
        "templates/digest.html",
        "<p>Hello {{ first_name }} &amp; <a href=\"{{ link }}\">read</a></p>\n",
    );
    let path = d.write(
        "weekly-digest.yaml",
        "id: weekly-digest
label: Weekly digest
channel: email
audience:
  file: audiences/subscribers.csv
content:
  from: \"Shop <news@shop.example>\"
  subject: \"Your week, {{ first_name | default('friend') }}\"
  html_file: templates/digest.html
  text: \"Hello {{ first_name }}, see {{ link }}\"
schedule:
  cron: \"0 9 * * MON\"
  timezone: Europe/Paris
  aggregation: none
  confirm: true
  starts: 2026-12-01
  ends: 2027-06-30
  catch_up: latest
  prepare_ahead: 2h
  confirm_deadline: 6h
throttle: 50/s
tracking:
  opens: true
  clicks: false
",
    );
    let delivery = load_file(&path, &d.ctx()).unwrap();
    assert!(delivery.content().fields["html"].contains("<a href"));
    assert!(!delivery.content().fields.contains_key("html_file"));
    assert!(!delivery.tracking().clicks);
    assert_eq!(delivery.throttle().unwrap().to_string(), "50/s");
    assert!(matches!(delivery.audience(), Audience::File { .. }));
    // The snapshot round-trips and hashes the same.
    let json = serde_json::to_string(&delivery).unwrap();
    let back: Delivery = serde_json::from_str(&json).unwrap();
    assert_eq!(back, delivery);
    assert_eq!(back.definition_hash(), delivery.definition_hash());
}

#[test]
fn unknown_keys_are_errors_at_the_key() {
    let d = Dir::new();
    let errors = d.errors("a.yaml", &SMS.replace("schedule:", "shedule:"));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("a.yaml:9:1: unknown field `shedule`"),
        "{errors:?}"
    );
}

#[test]
fn duplicate_keys_are_refused() {
    let d = Dir::new();
    let errors = d.errors("a.yaml", &format!("{SMS}channel: email\n"));
    assert_eq!(
        errors[0], "a.yaml:11:1: `channel` is set twice in the same block: keep one",
        "{errors:?}"
    );
}

#[test]
fn every_problem_of_a_file_is_reported_in_one_pass() {
    let d = Dir::new();
    let text = "id: Bad Id
channel: sms
audience:
  recipients:
    - { id: c1, phone: \"+33612345678\" }
    - { phone: \"+33698765432\" }
    - { id: \"c\\t2\", phone: \"+33611111111\" }
content:
  from: SHOP
  body: \"Hi {{ first_name }} {% if %}\"
  subject: nope
schedule:
  cron: '0 9 * * *'
  aggregation: week
  confirm: true
throttle: 5/day
tracking: { opens: true }
";
    let errors = d.errors("a.yaml", text);
    let expect = [
        "a.yaml:1:5: invalid id `Bad Id`",
        "a.yaml:6:7: this recipient has no `id`",
        "a.yaml:7:7: the `id` holds a control character",
        "a.yaml:10:9: `content.body`: template syntax error",
        "a.yaml:11:12: `content.subject` is not a field of channel `sms`",
        "a.yaml:16:11: unknown throttle unit `day`",
        "a.yaml:17:11: `tracking` is for e-mail only",
        "a.yaml:15:12: `confirm: true` is not allowed with `aggregation: week`",
    ];
    for e in expect {
        assert!(
            errors.iter().any(|x| x.starts_with(e)),
            "missing {e} in {errors:#?}"
        );
    }
    assert_eq!(errors.len(), expect.len(), "{errors:#?}");
}

#[test]
fn a_variable_missing_from_the_audience_is_an_error_unless_defaulted() {
    let d = Dir::new();
    let body = "body: \"Hi {{ first_name }} {{ nickname | default('x') }} {% if coupon is defined %}{{ coupon }}{% endif %} {{ recipient_id }} {{ run_id }}\"";
    let ok = SMS.replace(
        "body: \"Hi {{ first_name }}, your order has shipped.\"",
        body,
    );
    let path = d.write("ok.yaml", &ok);
    load_file(&path, &d.ctx()).unwrap();
    let bad = SMS.replace("{{ first_name }}", "{{ firstname }}");
    let errors = d.errors("bad.yaml", &bad);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("bad.yaml:8:9: `content.body`: variable `firstname` is not a column"),
        "{errors:?}"
    );
}

#[test]
fn template_errors_in_a_template_file_name_that_file_and_line() {
    let d = Dir::new();
    d.write("a.csv", "id,email\nc1,a@x.example\n");
    d.write("t/body.html", "<p>\n  Hello {{ name }}\n</p>\n");
    let text = "channel: email\naudience: { file: a.csv }\ncontent:\n  from: a@x.example\n  subject: Hi\n  html_file: t/body.html\n";
    let errors = d.errors("m.yaml", text);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("t/body.html:2:12: variable `name` is not a column"),
        "{errors:?}"
    );
}

#[test]
fn csv_header_problems_name_the_csv() {
    let d = Dir::new();
    d.write("a.csv", "id,phone\nc1,+33612345678\n");
    let text = "channel: email\naudience: { file: a.csv }\ncontent:\n  from: a@x.example\n  subject: Hi\n  text: Hi\n";
    let errors = d.errors("m.yaml", text);
    assert_eq!(
        errors,
        vec!["a.csv:1:1: the header has no `email` column, which channel `email` sends to: add it"]
    );
}

#[test]
fn validation_reports_the_rows_preparation_would_skip_and_loading_never_reads_them() {
    let d = Dir::new();
    d.write(
        "a.csv",
        b"id,phone\nc1,+33612345678\n,+33600000001\nc3\nc4,\xff\nc5,+33600000005\n".as_slice(),
    );
    let yaml = d.write(
        "d.yaml",
        "channel: sms\naudience: { file: a.csv }\ncontent: { from: S, body: hi }\n",
    );
    let loaded = load_paths(std::slice::from_ref(&yaml), &d.ctx());
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    let loaded = validate_paths(&[yaml], &d.ctx());
    assert!(loaded.deliveries.is_empty());
    let lines: Vec<String> = loaded
        .errors
        .iter()
        .map(|e| e.to_string().replace(&format!("{}/", d.root.display()), ""))
        .collect();
    assert_eq!(
        lines,
        vec![
            "a.csv:3:1: the row has an empty `id`: give each recipient a stable `id`",
            "a.csv:4:1: 1 fields where the header has 2: quote values that hold a comma, and give every row each column",
            "a.csv:5:1: not valid UTF-8: save the file as UTF-8",
        ]
    );
}

#[test]
fn exclusions_are_outcomes_not_validation_errors() {
    let d = Dir::new();
    d.write(
        "a.csv",
        "id,phone\nc1,+33612345678\nc2,\nc3,not-a-phone\nc1,+33612345678\n",
    );
    let yaml = d.write(
        "d.yaml",
        "channel: sms\naudience: { file: a.csv }\ncontent: { from: S, body: hi }\n",
    );
    let loaded = validate_paths(&[yaml], &d.ctx());
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    assert_eq!(loaded.deliveries.len(), 1);
}

#[test]
fn past_the_first_bad_rows_validation_counts_the_rest_in_one_line() {
    let d = Dir::new();
    let mut csv = String::from("id,phone\n");
    for _ in 0..8 {
        csv.push_str(",+33612345678\n");
    }
    csv.push_str("c9,+33612345678\n");
    d.write("a.csv", csv);
    let yaml = d.write(
        "d.yaml",
        "channel: sms\naudience: { file: a.csv }\ncontent: { from: S, body: hi }\n",
    );
    let errors = validate_paths(&[yaml], &d.ctx()).errors;
    let lines: Vec<u64> = errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, vec![2, 3, 4, 5, 6, 7], "{errors:?}");
    assert!(
        errors[5]
            .message
            .starts_with("3 more rows from this one on cannot be used either"),
        "{errors:?}"
    );
}

#[test]
fn audience_paths_outside_the_roots_are_never_read() {
    let d = Dir::new();
    let text = |file: &str| {
        format!("channel: outbox\naudience: {{ file: \"{file}\" }}\ncontent:\n  body: hi\n")
    };
    let errors = d.errors("a.yaml", &text("../../etc/shadow"));
    assert!(
        errors[0].contains("a.yaml:2:19: `audience.file`: `../../etc/shadow` leads outside"),
        "{errors:?}"
    );
    let errors = d.errors("b.yaml", &text("/etc/passwd"));
    let expected = format!(
        "b.yaml:2:19: `audience.file`: `/etc/passwd` leads outside the allowed folders ({}): move the file inside one, or add its folder to `audience_roots`",
        d.root.display()
    );
    assert_eq!(errors, vec![expected]);
    std::os::unix::fs::symlink("/etc/passwd", d.root.join("out.csv")).unwrap();
    let errors = d.errors("c.yaml", &text("out.csv"));
    assert!(
        errors[0].contains("symlink that leads outside"),
        "{errors:?}"
    );
}

#[test]
fn audience_roots_allow_folders_outside_the_deliveries_dir() {
    let d = Dir::new();
    let other = Dir::new();
    other.write("list.csv", "id,phone\nc1,+33612345678\n");
    let rel = format!(
        "../{}/list.csv",
        other.root.file_name().unwrap().to_string_lossy()
    );
    let yaml = d.write(
        "a.yaml",
        format!("channel: sms\naudience: {{ file: \"{rel}\" }}\ncontent:\n  from: S\n  body: hi\n"),
    );
    assert!(load_file(&yaml, &d.ctx()).is_err());
    let mut ctx = d.ctx();
    ctx.audience_roots.push(other.root.clone());
    load_file(&yaml, &ctx).unwrap();
}

#[test]
fn absolute_audience_paths_inside_the_deliveries_dir_or_a_root_are_read() {
    let d = Dir::new();
    let other = Dir::new();
    let inside = d.write("lists/in.csv", "id,phone\nc1,+33612345678\n");
    let rooted = other.write("list.csv", "id,phone\nc1,+33612345678\n");
    let text = |file: &Path| {
        format!(
            "channel: sms\naudience: {{ file: \"{}\" }}\ncontent:\n  from: S\n  body: hi\n",
            file.display()
        )
    };
    let mut ctx = d.ctx();
    ctx.audience_roots.push(other.root.clone());
    for (rel, csv) in [("a.yaml", &inside), ("b.yaml", &rooted)] {
        let yaml = d.write(rel, text(csv));
        let delivery = load_file(&yaml, &ctx).unwrap();
        assert_eq!(delivery.audience(), &Audience::File { path: csv.clone() });
    }
    let yaml = d.write("c.yaml", text(&rooted));
    let errors = load_file(&yaml, &d.ctx()).unwrap_err();
    assert_eq!((errors[0].line, errors[0].column), (2, 19), "{errors:?}");
    assert!(
        errors[0].message.contains(&format!(
            "leads outside the allowed folders ({})",
            d.root.display()
        )),
        "{errors:?}"
    );
}

#[test]
fn unknown_channel_is_a_warning_with_the_builtin_catalog_and_an_error_otherwise() {
    let d = Dir::new();
    let path = d.write(
        "f.yaml",
        "channel: fax\naudience: { recipients: [{ id: c1 }] }\ncontent: { page: hi }\n",
    );
    let report = check_file(&path, &d.ctx());
    assert!(report.result.is_ok());
    assert!(
        report.warnings[0]
            .to_string()
            .contains("f.yaml:1:10: unknown channel `fax`")
    );
    let mut ctx = d.ctx();
    ctx.channels = ChannelCatalog::from_channels(ChannelCatalog::builtin().get("email").cloned());
    let errors = load_file(&path, &ctx).unwrap_err();
    assert!(
        errors[0]
            .to_string()
            .contains("unknown channel `fax`: the loaded plugins serve email")
    );
}

#[test]
fn required_content_fields_per_channel() {
    let d = Dir::new();
    let errors = d.errors(
        "e.yaml",
        "channel: email\naudience: { recipients: [{ id: c1, email: a@x.example }] }\ncontent:\n  from: a@x.example\n  headers: { X-Tag: t }\n",
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("e.yaml:4:3: `content` of channel `email` needs `subject`")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("needs `html` or `html_file` or `text` or `text_file`")),
        "{errors:?}"
    );
    let errors = d.errors(
        "p.yaml",
        "channel: push\naudience: { recipients: [{ id: c1 }] }\ncontent:\n  title: t\n  data: hello\n",
    );
    assert!(
        errors.iter().any(|e| e.contains("needs `body`")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("`content.data` must be a map of strings")),
        "{errors:?}"
    );
}

#[test]
fn a_ten_megabyte_file_is_refused_with_its_size() {
    let d = Dir::new();
    let path = d.write("big.yaml", vec![b'#'; 10 * 1024 * 1024]);
    let errors = load_file(&path, &d.ctx()).unwrap_err();
    assert!(
        errors[0]
            .message
            .contains("10485760 bytes, over the limit of 1048576"),
        "{errors:?}"
    );
}

#[test]
fn binary_and_invalid_utf8_files_are_refused() {
    let d = Dir::new();
    let path = d.write("bin.yaml", [0x7f, b'E', b'L', b'F', 0, 0, 1, 2]);
    let errors = load_file(&path, &d.ctx()).unwrap_err();
    assert!(errors[0].message.contains("binary"), "{errors:?}");
    let path = d.write("latin1.yaml", b"label: caf\xe9\n");
    let errors = load_file(&path, &d.ctx()).unwrap_err();
    assert_eq!((errors[0].line, errors[0].column), (1, 11));
    assert!(errors[0].message.contains("not valid UTF-8"), "{errors:?}");
}

#[test]
fn deep_nesting_is_refused() {
    let d = Dir::new();
    let deep = format!(
        "channel: outbox\naudience: {{ recipients: [{{ id: c1, x: {}{} }}] }}\ncontent: {{ body: hi }}\n",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let errors = d.errors("deep.yaml", &deep);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("nested too deeply"), "{errors:?}");
}

#[test]
fn alias_bombs_are_refused_quickly() {
    let d = Dir::new();
    // One anchored recipient of 1,000 fields, replayed 1,000 times: a
    // million map entries if expanded.
    let fields: Vec<String> = (0..1000).map(|i| format!("k{i}: v")).collect();
    let mut bomb = format!(
        "channel: outbox\ncontent: {{ body: hi }}\naudience:\n  recipients:\n    - &r {{ id: c1, {} }}\n",
        fields.join(", ")
    );
    for _ in 0..1000 {
        bomb.push_str("    - *r\n");
    }
    let started = std::time::Instant::now();
    let errors = d.errors("bomb.yaml", &bomb);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("too large"), "{errors:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn empty_or_comment_only_files_are_refused_as_empty() {
    let d = Dir::new();
    for (i, text) in ["", "\n  \n", "# only a comment\n\n  # and another\n"]
        .iter()
        .enumerate()
    {
        let errors = d.errors(&format!("e{i}.yaml"), text);
        assert_eq!(
            errors,
            [format!(
                "e{i}.yaml:1:1: the delivery file is empty: it needs at least `channel`, `audience` and `content`"
            )]
        );
    }
}

#[test]
fn wrong_types_say_what_was_expected_at_the_value() {
    let d = Dir::new();
    let confirm = d.errors("b.yaml", &format!("{SMS}  confirm: maybe\n"));
    assert!(
        confirm[0].ends_with(": expected `true` or `false` here"),
        "{confirm:?}"
    );
    let list = d.errors(
        "l.yaml",
        "channel: sms\naudience:\n  recipients: { id: c1 }\ncontent:\n  body: hi\n",
    );
    assert_eq!(
        list,
        ["l.yaml:3:15: expected a list here: one `- ` line per item"]
    );
}

#[test]
fn garbage_and_truncated_yaml_are_errors_not_panics() {
    let d = Dir::new();
    for (i, text) in [
        "{{{{",
        "channel: [",
        "- a\n- b\n",
        "channel: sms\naudience:\n  recipients: [{ id: c1",
        "\t\tkey: value",
        "42",
    ]
    .iter()
    .enumerate()
    {
        let errors = d.errors(&format!("g{i}.yaml"), text);
        assert!(!errors.is_empty());
        assert!(
            errors.iter().all(|e| e.starts_with(&format!("g{i}.yaml:"))),
            "{errors:?}"
        );
        let clean = |e: &String| !e.contains(" at line ") && !e.contains('\n');
        assert!(errors.iter().all(clean), "{errors:?}");
    }
}

#[test]
fn folder_loading_skips_hidden_and_backup_files_recurses_and_survives_fifos_and_loops() {
    let d = Dir::new();
    d.write("sub/deeper/one.yaml", SMS);
    d.write(
        "two.yml",
        SMS.replace(
            "at: 2026-12-01T09:00:00+01:00",
            "at: 2026-12-02T09:00:00+01:00",
        ),
    );
    d.write(".hidden.yaml", "garbage: [");
    d.write("two.yml~", "garbage: [");
    d.write("notes.txt", "not a delivery");
    let fifo = std::ffi::CString::new(d.root.join("pipe.yaml").to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    std::os::unix::fs::symlink(d.root.join("loop-b"), d.root.join("loop-a")).unwrap();
    std::os::unix::fs::symlink(d.root.join("loop-a"), d.root.join("loop-b")).unwrap();
    std::os::unix::fs::symlink(&d.root, d.root.join("sub/back-to-root")).unwrap();
    let loaded = load_folder(&d.ctx());
    let ids: Vec<_> = loaded.deliveries.iter().map(|x| x.id()).collect();
    assert_eq!(ids, vec!["one", "two"]);
    let errors: Vec<String> = loaded.errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(errors.len(), 3, "{errors:#?}");
    assert!(
        errors
            .iter()
            .any(|e| e.contains("loop-a:1:1: is a symlink loop")),
        "{errors:#?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("pipe.yaml:1:1: the delivery file is a FIFO")),
        "{errors:#?}"
    );
}

#[test]
fn duplicate_ids_across_files_name_both_files() {
    let d = Dir::new();
    d.write("a.yaml", format!("id: same\n{SMS}"));
    d.write("b.yaml", format!("# the same id\nid:   same\n{SMS}"));
    d.write("same.yaml", SMS);
    let loaded = load_folder(&d.ctx());
    assert_eq!(loaded.deliveries.len(), 1);
    let errors: Vec<String> = loaded.errors.iter().map(|e| e.to_string()).collect();
    // At the `id:` value when the file has one, else at the file's start.
    assert!(
        errors[0].contains("b.yaml:2:7: id `same` is already used by")
            && errors[0].contains("a.yaml"),
        "{errors:?}"
    );
    assert!(
        errors[1].contains("same.yaml:1:1: id `same` is already used by")
            && errors[1].contains("a.yaml"),
        "{errors:?}"
    );
}

#[test]
fn inline_values_keep_their_written_text() {
    let d = Dir::new();
    let path = d.write(
        "a.yaml",
        "channel: sms\naudience:\n  recipients:\n    - { id: 007, phone: +33612345678, vip: true, score: 3.50, nick: ~ }\ncontent: { from: S, body: hi }\n",
    );
    let delivery = load_file(&path, &d.ctx()).unwrap();
    let row = delivery.audience().rows().next().unwrap().unwrap();
    assert_eq!(row.id, "007");
    assert_eq!(row.fields["phone"], "+33612345678");
    assert_eq!(row.fields["score"], "3.50");
    assert_eq!(row.fields["vip"], "true");
    assert_eq!(row.fields["nick"], "");
}

#[test]
fn content_numbers_become_text_and_lists_are_refused_clearly() {
    let d = Dir::new();
    let path = d.write("n.yaml", "channel: outbox\naudience: { recipients: [{ id: c1 }] }\ncontent: { year: 2026, flag: true }\n");
    let delivery = load_file(&path, &d.ctx()).unwrap();
    assert_eq!(delivery.content().fields["year"], "2026");
    let errors = d.errors(
        "l.yaml",
        "channel: outbox\naudience: { recipients: [{ id: c1 }] }\ncontent: { body: [a, b] }\n",
    );
    assert!(errors[0].contains("l.yaml:3:12: invalid type: sequence, expected a template string, or a map of template strings"), "{errors:?}");
}

#[test]
fn a_delivery_symlink_out_of_the_folder_is_not_read() {
    let d = Dir::new();
    let outside = Dir::new();
    let secret = outside.write("secret.yaml", "root: x\n");
    std::os::unix::fs::symlink(&secret, d.root.join("link.yaml")).unwrap();
    let loaded = load_folder(&d.ctx());
    assert_eq!(loaded.errors.len(), 1);
    let e = loaded.errors[0].to_string();
    assert!(
        e.contains("link.yaml:1:1: is a symlink that leads outside") && !e.contains("`root`"),
        "{e}"
    );
}

#[test]
fn only_the_body_is_required_of_an_sms_or_a_push() {
    let d = Dir::new();
    for (rel, text) in [
        (
            "s.yaml",
            "channel: sms\naudience: { recipients: [{ id: c1, phone: '+33612345678' }] }\ncontent: { body: hi }\n",
        ),
        (
            "p.yaml",
            "channel: push\naudience: { recipients: [{ id: c1, push_token: t1 }] }\ncontent: { body: hi }\n",
        ),
    ] {
        let path = d.write(rel, text);
        let loaded = load_file(&path, &d.ctx());
        assert!(loaded.is_ok(), "{rel}: {:?}", loaded.err());
    }
}
