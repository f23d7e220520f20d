//! The route table: every route of the `listen` router, with what the
//! OpenAPI document says about it. The router and the document are both
//! built from [`endpoints`], and the request and answer schemas come from
//! the handlers' own types (schemars), so they cannot drift apart.

use super::auth::Right;
use super::error::ErrorBody;
use super::views::*;
use super::{AppState, deliveries, feedback, page, profiles, proof, runs, suppressions};
use crate::runs::actions::Action;
use axum::extract::{Path, State};
use axum::http::Method;
use axum::routing::{MethodRouter, delete, get, post, put};
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{Map, Value, json};

/// A schema of a type, added to the document's components.
type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

/// What a route answers with on success.
pub enum Body {
    /// JSON of this schema.
    Json(SchemaFn),
    /// Plain text.
    Text,
    /// An HTML page.
    Html,
}

/// One route of the router.
pub struct Endpoint {
    /// The HTTP method.
    pub method: Method,
    /// The path, with `{param}` placeholders (the same syntax in axum and OpenAPI).
    pub path: &'static str,
    /// One line for the document.
    pub summary: &'static str,
    /// The right the caller needs; `None` for public routes.
    pub right: Option<Right>,
    /// Query parameters: their schema (an object whose properties are the parameters).
    pub query: Option<SchemaFn>,
    /// The JSON request body, if any.
    pub request: Option<SchemaFn>,
    /// The success answer.
    pub response: Body,
    /// The handler.
    pub handler: fn() -> MethodRouter<AppState>,
}

fn schema<T: JsonSchema>(g: &mut SchemaGenerator) -> Schema {
    g.subschema_for::<T>()
}

fn action(action: Action) -> MethodRouter<AppState> {
    post(
        move |State(state): State<AppState>,
              caller: super::auth::Caller,
              Path(id): Path<String>| { runs::act(state, caller, id, action) },
    )
}

/// Every route of the `listen` router.
pub fn endpoints() -> Vec<Endpoint> {
    use Body::*;
    let e = |method: Method,
             path: &'static str,
             summary: &'static str,
             right: Option<Right>,
             response: Body,
             handler: fn() -> MethodRouter<AppState>| Endpoint {
        method,
        path,
        summary,
        right,
        query: None,
        request: None,
        response,
        handler,
    };
    let read = Some(Right::Read);
    let start = Some(Right::Start);
    let admin = Some(Right::Admin);
    vec![
        e(
            Method::GET,
            "/healthz",
            "200 ok while the process serves",
            None,
            Text,
            || get(|| async { "ok" }),
        ),
        e(
            Method::GET,
            "/readyz",
            "200 when the store answers, deliveries are loaded and no plugin is unhealthy; else 503 with the reason",
            None,
            Text,
            || get(super::readyz),
        ),
        e(
            Method::GET,
            "/metrics",
            "Prometheus text format",
            None,
            Text,
            || get(super::metrics),
        ),
        e(
            Method::GET,
            "/",
            "The confirm page and the Deployment view",
            None,
            Html,
            || get(page::page),
        ),
        e(
            Method::GET,
            "/api/v1/openapi.json",
            "This document",
            read,
            Json(schema::<Value>),
            || get(document_handler),
        ),
        e(
            Method::GET,
            "/api/v1/deliveries",
            "Loaded deliveries and the errors of the files that do not load",
            read,
            Json(schema::<DeliveryList>),
            || get(deliveries::list),
        ),
        e(
            Method::GET,
            "/api/v1/deliveries/{id}",
            "A delivery: summary, next_run_at, KPIs summed over its runs and per period",
            read,
            Json(schema::<DeliveryDetail>),
            || get(deliveries::show),
        ),
        e(
            Method::POST,
            "/api/v1/deliveries/{id}/statistics",
            "Recompute the KPIs of the delivery's runs from the recorded outcomes",
            start,
            Json(schema::<DeliveryDetail>),
            || post(deliveries::statistics),
        ),
        Endpoint {
            request: Some(schema::<ProofRequest>),
            ..e(
                Method::POST,
                "/api/v1/deliveries/{id}/proof",
                "Send a proof of the delivery to test addresses (subject prefixed [PROOF]); not a run",
                start,
                Json(schema::<ProofAnswer>),
                || post(proof::send),
            )
        },
        Endpoint {
            query: Some(schema::<runs::RunQuery>),
            ..e(
                Method::GET,
                "/api/v1/runs",
                "Runs, newest first",
                read,
                Json(schema::<RunPage>),
                || get(runs::list),
            )
        },
        e(
            Method::GET,
            "/api/v1/runs/{run_id}",
            "One run",
            read,
            Json(schema::<RunView>),
            || get(runs::show),
        ),
        e(
            Method::POST,
            "/api/v1/runs/{run_id}/confirm",
            "Confirm a pending run (409 with state otherwise)",
            start,
            Json(schema::<RunView>),
            || action(Action::Confirm),
        ),
        e(
            Method::POST,
            "/api/v1/runs/{run_id}/cancel",
            "Cancel a run that is not final (409 with state otherwise)",
            start,
            Json(schema::<RunView>),
            || action(Action::Cancel),
        ),
        e(
            Method::POST,
            "/api/v1/runs/{run_id}/pause",
            "Pause a sending run (409 with state otherwise)",
            start,
            Json(schema::<RunView>),
            || action(Action::Pause),
        ),
        e(
            Method::POST,
            "/api/v1/runs/{run_id}/resume",
            "Resume a paused run (409 with state otherwise)",
            start,
            Json(schema::<RunView>),
            || action(Action::Resume),
        ),
        Endpoint {
            query: Some(schema::<profiles::PageQuery>),
            ..e(
                Method::GET,
                "/api/v1/profiles/{recipient_id}/messages",
                "The messages a recipient was sent, newest first",
                read,
                Json(schema::<MessagePage>),
                || get(profiles::messages),
            )
        },
        e(
            Method::DELETE,
            "/api/v1/profiles/{recipient_id}",
            "Erase a recipient: their history and their rows in finished runs now, in runs still going when they finish; KPI counts stay",
            admin,
            Json(schema::<ErasureAnswer>),
            || delete(profiles::erase),
        ),
        Endpoint {
            query: Some(schema::<suppressions::SuppressionQuery>),
            ..e(
                Method::GET,
                "/api/v1/suppressions",
                "Entries of the quarantine or the denylist",
                read,
                Json(schema::<SuppressionPage>),
                || get(suppressions::list),
            )
        },
        Endpoint {
            request: Some(schema::<SuppressRequest>),
            ..e(
                Method::PUT,
                "/api/v1/suppressions/{list}/{address}",
                "Put an address on a list",
                admin,
                Json(schema::<SuppressAnswer>),
                || put(suppressions::add),
            )
        },
        e(
            Method::DELETE,
            "/api/v1/suppressions/{list}/{address}",
            "Lift an entry",
            admin,
            Json(schema::<SuppressAnswer>),
            || delete(suppressions::lift),
        ),
        Endpoint {
            request: Some(schema::<feedback::FeedbackRequest>),
            ..e(
                Method::POST,
                "/api/v1/feedback",
                "Provider feedback (delivered, bounced, failed, complained, stop), one event or {\"events\": [...]}",
                Some(Right::Feedback),
                Json(schema::<feedback::FeedbackAnswer>),
                || post(feedback::post),
            )
        },
    ]
}

/// Everything under `/api/v1` needs a token (guarantees.md), the document too.
async fn document_handler(
    caller: super::auth::Caller,
) -> super::error::ApiResult<axum::Json<Value>> {
    caller.require(Right::Read, "read the API document")?;
    Ok(axum::Json(document()))
}

/// The OpenAPI 3.1 document of [`endpoints`].
pub fn document() -> Value {
    let mut generator = SchemaSettings::draft2020_12()
        .with(|s| s.definitions_path = "/components/schemas".into())
        .into_generator();
    let error = schema::<ErrorBody>(&mut generator);
    let mut paths = public_paths();
    for endpoint in endpoints() {
        let operation = operation(&endpoint, &mut generator, &error);
        let item = paths
            .entry(endpoint.path.to_owned())
            .or_insert_with(|| json!({}));
        item[endpoint.method.as_str().to_lowercase()] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Herald HTTP hook",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Confirm, cancel, pause and resume runs; read deliveries, runs, KPIs, profiles and suppressions. Authenticate with `Authorization: Bearer TOKEN`."
        },
        "components": {
            "schemas": generator.take_definitions(true),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}
        },
        "paths": paths,
    })
}

/// The paths served by [`crate::tracking::public_routes`]: alone on
/// `http.public_listen` when it is set, else beside the API. Described
/// here so the document covers every route of http-api.md; their only
/// credential is the signed token in the path.
pub const PUBLIC_PATHS: [&str; 3] = ["/t/o/{token}", "/t/c/{token}", "/u/{token}"];

fn public_paths() -> Map<String, Value> {
    let token =
        json!([{"name": "token", "in": "path", "required": true, "schema": {"type": "string"}}]);
    let invalid = json!({"description": "The token does not verify: nothing is recorded, nothing is redirected"});
    let html = |what: &str| json!({"description": what, "content": {"text/html": {"schema": {"type": "string"}}}});
    let op = |id: &str, summary: &str, ok: (&str, Value)| {
        json!({
            "summary": summary,
            "operationId": id,
            "parameters": token,
            "responses": {ok.0: ok.1, "404": invalid},
            "x-herald-listener": "http.public_listen when set, else http.listen",
        })
    };
    let paths = json!({
        PUBLIC_PATHS[0]: {"get": op("get_t_o_token", "Open tracking: a 1x1 GIF; records a unique open",
            ("200", json!({"description": "The pixel", "content": {"image/gif": {"schema": {"type": "string", "format": "binary"}}}})))},
        PUBLIC_PATHS[1]: {"get": op("get_t_c_token", "Click tracking: records a unique click and redirects to the original URL",
            ("302", json!({"description": "To the original URL", "headers": {"Location": {"schema": {"type": "string"}}}})))},
        PUBLIC_PATHS[2]: {
            "get": op("get_u_token", "The unsubscribe page (a GET never unsubscribes)", ("200", html("The page with its button"))),
            "post": op("post_u_token", "Unsubscribe (RFC 8058 one-click): the address joins the denylist", ("200", html("Done"))),
        },
    });
    match paths {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

fn operation(endpoint: &Endpoint, generator: &mut SchemaGenerator, error: &Schema) -> Value {
    let mut parameters: Vec<Value> = path_params(endpoint.path)
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect();
    if let Some(query) = endpoint.query {
        let object = query(generator);
        let resolved = resolve(&object, generator);
        if let Some(props) = resolved.get("properties").and_then(Value::as_object) {
            for (name, schema) in props {
                parameters.push(
                    json!({"name": name, "in": "query", "required": false, "schema": schema}),
                );
            }
        }
    }
    let success = match endpoint.response {
        Body::Json(f) => {
            json!({"description": "OK", "content": {"application/json": {"schema": f(generator)}}})
        }
        Body::Text => {
            json!({"description": "OK", "content": {"text/plain": {"schema": {"type": "string"}}}})
        }
        Body::Html => {
            json!({"description": "OK", "content": {"text/html": {"schema": {"type": "string"}}}})
        }
    };
    let err = |what: &str| json!({"description": what, "content": {"application/json": {"schema": error}}});
    let mut responses = json!({"200": success});
    if endpoint.right.is_some() {
        responses["401"] = err("Missing or unknown token");
        responses["403"] = err("The caller lacks the role");
    }
    if endpoint.path.contains('{') {
        responses["404"] = err("Not found");
    }
    if endpoint.path.starts_with("/api/v1/runs/") && endpoint.method == Method::POST {
        responses["409"] = err("Not allowed in the run's current state; `state` carries it");
    }
    if endpoint.request.is_some() || endpoint.query.is_some() {
        responses["400"] = err("Malformed request");
    }
    if endpoint.request.is_some() {
        responses["413"] = err("Body over 1 MiB");
    }
    let mut op = json!({
        "summary": endpoint.summary,
        "operationId": operation_id(endpoint),
        "parameters": parameters,
        "responses": responses,
    });
    if let Some(right) = endpoint.right {
        op["security"] = json!([{"bearer": []}]);
        op["x-herald-role"] = json!(right.role().as_str());
    }
    if let Some(request) = endpoint.request {
        op["requestBody"] = json!({"required": false, "content": {"application/json": {"schema": request(generator)}}});
    }
    op
}

/// The schema itself when `schema` is a `$ref` into the components.
fn resolve(schema: &Schema, generator: &SchemaGenerator) -> Value {
    let value = schema.as_value().clone();
    let Some(reference) = value.get("$ref").and_then(Value::as_str) else {
        return value;
    };
    let name = reference.rsplit('/').next().unwrap_or_default();
    generator.definitions().get(name).cloned().unwrap_or(value)
}

fn path_params(path: &str) -> impl Iterator<Item = &str> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
}

fn operation_id(endpoint: &Endpoint) -> String {
    let words: Vec<&str> = endpoint
        .path
        .split('/')
        .filter(|s| !s.is_empty() && *s != "api" && *s != "v1")
        .map(|s| s.trim_matches(|c| c == '{' || c == '}'))
        .collect();
    let name = if words.is_empty() {
        "page".to_owned()
    } else {
        words.join("_")
    };
    format!(
        "{}_{}",
        endpoint.method.as_str().to_lowercase(),
        name.replace(['.', '-'], "_")
    )
}
