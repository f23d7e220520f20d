//! The OpenAPI document and the router list the same routes.

use super::*;
use crate::http::openapi::{PUBLIC_PATHS, document, endpoints};

fn concrete(path: &str) -> String {
    path.split('/')
        .map(|s| if s.starts_with('{') { "x@once" } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test]
async fn every_route_of_the_router_is_in_the_openapi_document_and_vice_versa() {
    let h = Harness::new().await;
    let (status, doc) = h
        .call("GET", "/api/v1/openapi.json", Some(VIEWER), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc, document());
    let paths = doc["paths"].as_object().unwrap();

    // The document has exactly the table's operations...
    // (the public tracking routes are served by their own router, checked
    // against the live daemon in tests/tests/http_e2e)
    let mut documented = Vec::new();
    for (path, item) in paths
        .iter()
        .filter(|(path, _)| !PUBLIC_PATHS.contains(&path.as_str()))
    {
        for method in item.as_object().unwrap().keys() {
            documented.push((method.to_uppercase(), path.clone()));
        }
    }
    let mut table: Vec<(String, String)> = endpoints()
        .iter()
        .map(|e| (e.method.to_string(), e.path.to_owned()))
        .collect();
    documented.sort();
    table.sort();
    assert_eq!(documented, table);

    // ...and the router answers every one of them (no routing 404 or 405),
    for (method, path) in &documented {
        let (status, body) = h.call(method, &concrete(path), None, None).await;
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        let routed_404 = status == StatusCode::NOT_FOUND
            && body["error"]
                .as_str()
                .is_some_and(|e| e.starts_with("no such route"));
        assert!(!routed_404, "{method} {path} is not routed");
    }
    // ...while a route missing from the document is not served.
    let (status, _) = h
        .call("GET", "/api/v1/undocumented", Some(VIEWER), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for (method, path) in [
        ("DELETE", "/api/v1/runs/x@once"),
        ("GET", "/api/v1/runs/x@once/confirm"),
    ] {
        let (status, body) = h.call(method, path, Some(ADMIN), None).await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert!(body["error"].is_string(), "{method} {path}: {body}");
    }
}

#[test]
fn the_document_describes_roles_schemas_and_the_409_state() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    let confirm = &doc["paths"]["/api/v1/runs/{run_id}/confirm"]["post"];
    assert_eq!(confirm["x-herald-role"], "start_deliveries");
    assert!(confirm["responses"]["409"].is_object());
    assert!(doc["components"]["schemas"]["RunView"]["properties"]["kpi"].is_object());
    assert!(doc["components"]["schemas"]["ErrorBody"]["properties"]["state"].is_object());
    // The detail shows the summary beside its own fields, optional since
    // a delivery whose file is gone still has runs.
    let detail = &doc["components"]["schemas"]["DeliveryDetail"];
    assert!(detail["properties"]["channel"].is_object(), "{detail}");
    assert!(detail["properties"].get("delivery").is_none(), "{detail}");
    let required = detail["required"].as_array().unwrap();
    assert!(required.contains(&"kpi".into()), "{detail}");
    assert!(!required.contains(&"channel".into()), "{detail}");
    let runs = &doc["paths"]["/api/v1/runs"]["get"]["parameters"];
    let mut names: Vec<&str> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["cursor", "delivery", "limit", "state"]);
    for path in PUBLIC_PATHS {
        assert!(doc["paths"][path]["get"].is_object(), "{path}");
    }
    assert!(doc["paths"]["/u/{token}"]["post"].is_object());
}
