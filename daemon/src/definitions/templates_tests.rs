use super::*;
use crate::definitions::catalog::{ChannelCatalog, ValidationContext};
use crate::definitions::load_file;

fn known(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn delivery(content: &str) -> Delivery {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.yaml");
    let text = format!(
        "channel: email\naudience:\n  recipients:\n    - {{ id: c1, email: a@x.example, name: \"Ana <b>\", url: \"https://x.example/?a=1&b=2\" }}\ncontent:\n{content}"
    );
    std::fs::write(&path, text).unwrap();
    let ctx = ValidationContext {
        deliveries_dir: dir.path().to_path_buf(),
        audience_roots: Vec::new(),
        channels: ChannelCatalog::builtin(),
    };
    load_file(&path, &ctx).unwrap_or_else(|e| panic!("{e:#?}"))
}

fn row(pairs: &[(&str, &str)]) -> AudienceRow {
    AudienceRow {
        id: "c1".into(),
        fields: pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

#[test]
fn syntax_errors_point_at_their_line_and_column() {
    let p = check_template("text", "line one\nHello {{ name }", &known(&["name"]));
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].line, 2);
    assert!(
        p[0].message.starts_with("template syntax error"),
        "{:?}",
        p[0]
    );
}

#[test]
fn defaulted_and_attribute_uses_are_not_missing_variables() {
    let k = known(&["name"]);
    assert!(check_template("t", "{{ nick | default('x') }} {{ nick|d('y') }}", &k).is_empty());
    assert!(
        check_template(
            "t",
            "{{ name.upper() }} {{ 'nick' }} {{ recipient_id }}",
            &k
        )
        .is_empty()
    );
    let p = check_template("t", "{{ nick | default('x') }} {{ nick }}", &k);
    assert_eq!((p[0].line, p[0].column), (1, 30));
    assert_eq!(p[0].variable.as_deref(), Some("nick"));
}

#[test]
fn render_fills_columns_and_builtin_variables_and_escapes_only_html() {
    let d = delivery(
        "  from: \"Shop <news@shop.example>\"\n  subject: \"Hi {{ name }}\"\n  html: \"<a href='{{ url }}'>{{ name }}</a> {{ run_id }}\"\n  text: \"{{ name }} {{ delivery_id }} {{ recipient_id }}\"\n  headers: { X-Campaign: \"{{ delivery_id }}\" }\n",
    );
    let r = Renderer::new(&d).unwrap();
    let out = r
        .render(
            &row(&[("name", "Ana <b>"), ("url", "https://x.example/?a=1&b=2")]),
            "t@once",
        )
        .unwrap();
    assert_eq!(out.content["subject"], "Hi Ana <b>");
    assert_eq!(out.content["text"], "Ana <b> t c1");
    assert_eq!(
        out.content["html"],
        "<a href='https:&#x2f;&#x2f;x.example&#x2f;?a=1&amp;b=2'>Ana &lt;b&gt;</a> t@once"
    );
    assert_eq!(out.headers["X-Campaign"], "t");
}

#[test]
fn header_values_with_line_breaks_are_refused() {
    let d = delivery(
        "  from: a@x.example\n  subject: \"Hi {{ name }}\"\n  text: x\n  headers: { X-Name: \"{{ name }}\" }\n",
    );
    let r = Renderer::new(&d).unwrap();
    let err = r
        .render(&row(&[("name", "Ana\r\nBcc: victim@x.example")]), "r")
        .unwrap_err();
    assert!(
        matches!(err, RenderError::HeaderInjection { ref field } if field == "subject"),
        "{err}"
    );
    let d = delivery(
        "  from: a@x.example\n  subject: Hi\n  text: x\n  headers: { X-Name: \"{{ name }}\" }\n",
    );
    let err = Renderer::new(&d)
        .unwrap()
        .render(&row(&[("name", "a\nb")]), "r")
        .unwrap_err();
    assert!(
        matches!(err, RenderError::HeaderInjection { ref field } if field == "headers.X-Name"),
        "{err}"
    );
}

#[test]
fn an_endless_loop_is_stopped_by_fuel() {
    let d = delivery(
        "  from: a@x.example\n  subject: Hi\n  text: \"{% for a in range(100000) %}{% for b in range(100000) %}x{% endfor %}{% endfor %}\"\n",
    );
    let started = std::time::Instant::now();
    let err = Renderer::new(&d)
        .unwrap()
        .render(&row(&[]), "r")
        .unwrap_err();
    assert!(matches!(err, RenderError::TooLong { .. }), "{err}");
    assert!(err.to_string().contains("runs too long"));
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

#[test]
fn templates_cannot_include_files() {
    let d =
        delivery("  from: a@x.example\n  subject: Hi\n  text: \"{% include '/etc/passwd' %}\"\n");
    let err = Renderer::new(&d)
        .unwrap()
        .render(&row(&[]), "r")
        .unwrap_err();
    assert!(matches!(err, RenderError::Template { .. }), "{err}");
}

#[test]
fn a_missing_value_at_render_is_an_error_not_an_empty_string() {
    let d = delivery("  from: a@x.example\n  subject: Hi\n  text: \"{{ name }}\"\n");
    let err = Renderer::new(&d)
        .unwrap()
        .render(&row(&[]), "r")
        .unwrap_err();
    assert!(err.to_string().contains("undefined"), "{err}");
}

#[test]
fn built_in_variables_win_over_columns_of_the_same_name() {
    let d = delivery(
        "  from: \"Shop <news@shop.example>\"\n  subject: \"s\"\n  text: \"{{ run_id }}/{{ recipient_id }}/{{ delivery_id }}/{{ name }}\"\n",
    );
    let renderer = Renderer::new(&d).unwrap();
    let rendered = renderer
        .render(
            &row(&[("name", "Ana"), ("run_id", "forged"), ("recipient_id", "x")]),
            "t@once",
        )
        .unwrap();
    assert_eq!(
        rendered.content["text"],
        format!("t@once/c1/{}/Ana", d.id())
    );
}

#[test]
fn a_missing_column_is_an_error_not_an_empty_string() {
    let d = delivery(
        "  from: \"Shop <news@shop.example>\"\n  subject: \"s\"\n  text: \"{{ name }}\"\n",
    );
    let renderer = Renderer::new(&d).unwrap();
    let error = renderer.render(&row(&[]), "r").unwrap_err();
    assert!(error.to_string().contains("text"), "{error}");
}

#[test]
fn default_fills_an_empty_cell_as_it_fills_a_missing_one() {
    let d = delivery(
        "  from: a@x.example\n  subject: \"Your week, {{ name | default('friend') }}\"\n  text: \"{{ name|d('you') }}/{{ nick | default('n') }}/{{ name | default('x', true) }}/[{{ name }}]\"\n",
    );
    let renderer = Renderer::new(&d).unwrap();
    let empty = renderer.render(&row(&[("name", "")]), "r").unwrap();
    assert_eq!(empty.content["subject"], "Your week, friend");
    assert_eq!(empty.content["text"], "you/n/x/[]");
    let given = renderer.render(&row(&[("name", "Ana")]), "r").unwrap();
    assert_eq!(given.content["subject"], "Your week, Ana");
    assert_eq!(given.content["text"], "Ana/n/Ana/[Ana]");
}
