//! The `/scim/v2/{provider}/...` router. Handlers are thin: extract (the bearer token through
//! [`ScimAuth`], the body through [`ScimBody`] with its size limit), call one operation of
//! [`crate::provisioning`], and shape the response as `application/scim+json` with `ETag`
//! and `Location`. Every error leaves as an RFC 7644 §3.12 body.

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, any, get, post};
use serde_json::Value;

use super::auth::ScimAuth;
use super::discovery;
use super::response::SCIM_CONTENT_TYPE;
use crate::domain::scim::{MAX_PAYLOAD, ResourceType, ScimError};
use crate::provisioning::{ListQuery, Resource, if_match_ok};
use crate::state::AppState;

/// Every SCIM route; merged into the application router by `crate::app::router`.
pub fn routes() -> Router<AppState> {
    let mut router = Router::new();
    for rt in [ResourceType::User, ResourceType::Group] {
        router = router.merge(resource_routes(rt));
    }
    let b = "/scim/v2/{provider}";
    router
        .route(
            &format!("{b}/ServiceProviderConfig"),
            read_only(get(service_provider_config)),
        )
        .route(
            &format!("{b}/ResourceTypes"),
            read_only(get(resource_types)),
        )
        .route(
            &format!("{b}/ResourceTypes/{{id}}"),
            read_only(get(resource_type)),
        )
        .route(&format!("{b}/Schemas"), read_only(get(schemas)))
        .route(&format!("{b}/Schemas/{{id}}"), read_only(get(schema)))
        .route(&format!("{b}/Bulk"), any(bulk))
        // RFC 7644 §3.11: a server without /Me answers 501; likewise for the root-level search
        // across resource types (§3.4.3), which teamgate does not offer.
        .route(
            &format!("{b}/Me"),
            any(|_: ScimAuth| async { ScimError::NotImplemented("/Me") }),
        )
        .route(
            &format!("{b}/.search"),
            any(|_: ScimAuth| async {
                ScimError::NotImplemented("searching across resource types")
            }),
        )
        .route(b, any(unknown))
        .route(&format!("{b}/{{*rest}}"), any(unknown))
        .route("/scim/{*rest}", any(no_such_endpoint))
        // Read by `ScimBytes`: a larger body is a 413 before any parsing (security case 72).
        .layer(DefaultBodyLimit::max(MAX_PAYLOAD))
}

/// RFC 7644 §4: discovery endpoints are GET only; anything else is a 405 with a SCIM body.
fn read_only(route: MethodRouter<AppState>) -> MethodRouter<AppState> {
    route.fallback(|| async { ScimError::MethodNotAllowed { allow: "GET" } })
}

fn resource_routes(rt: ResourceType) -> Router<AppState> {
    let base = format!("/scim/v2/{{provider}}/{}", rt.endpoint());
    Router::new()
        .route(
            &base,
            get(move |a: ScimAuth, s: State<AppState>, q: RawQuery| list(rt, a, s, q))
                .post(
                    move |a: ScimAuth, s: State<AppState>, q: RawQuery, b: ScimBody| {
                        create(rt, a, s, q, b)
                    },
                )
                .fallback(|| async { ScimError::MethodNotAllowed { allow: "GET, POST" } }),
        )
        .route(
            &format!("{base}/.search"),
            post(move |a: ScimAuth, s: State<AppState>, b: ScimBody| search(rt, a, s, b))
                .fallback(|| async { ScimError::MethodNotAllowed { allow: "POST" } }),
        )
        .route(
            &format!("{base}/{{id}}"),
            get(
                move |a: ScimAuth, s: State<AppState>, p: IdPath, q: RawQuery, h: HeaderMap| {
                    fetch(rt, a, s, p, q, h)
                },
            )
            .put(
                move |a: ScimAuth,
                      s: State<AppState>,
                      p: IdPath,
                      q: RawQuery,
                      h: HeaderMap,
                      b: ScimBody| { replace(rt, a, s, p, q, h, b) },
            )
            .patch(
                move |a: ScimAuth,
                      s: State<AppState>,
                      p: IdPath,
                      q: RawQuery,
                      h: HeaderMap,
                      b: ScimBody| { patch(rt, a, s, p, q, h, b) },
            )
            .delete(
                move |a: ScimAuth, s: State<AppState>, p: IdPath, h: HeaderMap| {
                    remove(rt, a, s, p, h)
                },
            )
            .fallback(|| async {
                ScimError::MethodNotAllowed {
                    allow: "GET, PUT, PATCH, DELETE",
                }
            }),
        )
}

type IdPath = Result<Path<(String, String)>, PathRejection>;

fn id_of(p: IdPath) -> Result<String, ScimError> {
    p.map(|Path((_, id))| id)
        .map_err(|_| ScimError::NotFound("no such resource".into()))
}

fn query(raw: Option<&str>) -> ListQuery {
    let mut q = ListQuery::default();
    for (k, v) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        let slot = match k.as_ref() {
            "filter" => &mut q.filter,
            "startIndex" => &mut q.start_index,
            "count" => &mut q.count,
            "attributes" => &mut q.attributes,
            "excludedAttributes" => &mut q.excluded_attributes,
            _ => continue,
        };
        *slot = Some(v.into_owned());
    }
    q
}

fn header_str(h: &HeaderMap, name: header::HeaderName) -> Option<String> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// A SCIM JSON response.
fn respond(
    status: StatusCode,
    body: &Value,
    etag: Option<&str>,
    location: Option<&str>,
) -> Response {
    let mut response = (status, body.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(SCIM_CONTENT_TYPE),
    );
    if let Some(v) = etag.and_then(|e| HeaderValue::from_str(e).ok()) {
        headers.insert(header::ETAG, v);
    }
    if let Some(v) = location.and_then(|l| HeaderValue::from_str(l).ok()) {
        headers.insert(header::LOCATION, v);
    }
    response
}

fn resource(status: StatusCode, r: &Resource, with_location: bool) -> Response {
    respond(
        status,
        &r.body,
        Some(&r.etag),
        with_location.then_some(r.location.as_str()),
    )
}

async fn list(
    rt: ResourceType,
    auth: ScimAuth,
    State(s): State<AppState>,
    RawQuery(q): RawQuery,
) -> Result<Response, ScimError> {
    let body = s
        .provisioning
        .list(&auth.ctx, rt, &query(q.as_deref()))
        .await?;
    Ok(respond(StatusCode::OK, &body, None, None))
}

async fn search(
    rt: ResourceType,
    auth: ScimAuth,
    State(s): State<AppState>,
    ScimBody(body): ScimBody,
) -> Result<Response, ScimError> {
    let body = s
        .provisioning
        .list(&auth.ctx, rt, &ListQuery::from_search(&body)?)
        .await?;
    Ok(respond(StatusCode::OK, &body, None, None))
}

async fn create(
    rt: ResourceType,
    auth: ScimAuth,
    State(s): State<AppState>,
    RawQuery(q): RawQuery,
    ScimBody(body): ScimBody,
) -> Result<Response, ScimError> {
    let q = query(q.as_deref());
    let r = match rt {
        ResourceType::User => s.provisioning.create_user(&auth.ctx, &body, &q).await?,
        ResourceType::Group => s.provisioning.create_group(&auth.ctx, &body, &q).await?,
    };
    Ok(resource(StatusCode::CREATED, &r, true))
}

async fn fetch(
    rt: ResourceType,
    auth: ScimAuth,
    State(s): State<AppState>,
    p: IdPath,
    RawQuery(q): RawQuery,
    h: HeaderMap,
) -> Result<Response, ScimError> {
    let r = s
        .provisioning
        .get(&auth.ctx, rt, &id_of(p)?, &query(q.as_deref()))
        .await?;
    // RFC 7644 §3.14: a client holding the current version gets 304.
    if header_str(&h, header::IF_NONE_MATCH).is_some_and(|inm| {
        let version = r
            .etag
            .trim_start_matches("W/")
            .trim_matches('"')
            .parse()
            .unwrap_or(-1);
        if_match_ok(Some(&inm), version)
    }) {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        if let Ok(v) = HeaderValue::from_str(&r.etag) {
            response.headers_mut().insert(header::ETAG, v);
        }
        return Ok(response);
    }
    Ok(resource(StatusCode::OK, &r, false))
}

async fn replace(
    rt: ResourceType,
    auth: ScimAuth,
    State(s): State<AppState>,
    p: IdPath,
    RawQuery(q): RawQuery,
    h: HeaderMap,
    ScimBody(body): ScimBody,
) -> Result<Response, ScimError> {
    let (id, q, if_match) = (
        id_of(p)?,
        query(q.as_deref()),
        header_str(&h, header::IF_MATCH),
    );
    let r = match rt {
        ResourceType::User => {
            s.provisioning
                .replace_user(&auth.ctx, &id, &body, if_match, &q)
                .await?
        }
        ResourceType::Group => {
            s.provisioning
                .replace_group(&auth.ctx, &id, &body, if_match, &q)
                .await?
        }
    };
    Ok(resource(StatusCode::OK, &r, false))
}

async fn patch(
    rt: ResourceType,
    auth: ScimAuth,
    State(s): State<AppState>,
    p: IdPath,
    RawQuery(q): RawQuery,
    h: HeaderMap,
    ScimBody(body): ScimBody,
) -> Result<Response, ScimError> {
    let (id, q, if_match) = (
        id_of(p)?,
        query(q.as_deref()),
        header_str(&h, header::IF_MATCH),
    );
    match rt {
        ResourceType::User => {
            let r = s
                .provisioning
                .patch_user(&auth.ctx, &id, &body, if_match, &q)
                .await?;
            Ok(resource(StatusCode::OK, &r, false))
        }
        ResourceType::Group => {
            let etag = s
                .provisioning
                .patch_group(&auth.ctx, &id, &body, if_match)
                .await?;
            let mut response = StatusCode::NO_CONTENT.into_response();
            if let Ok(v) = HeaderValue::from_str(&etag) {
                response.headers_mut().insert(header::ETAG, v);
            }
            Ok(response)
        }
    }
}

async fn remove(
    rt: ResourceType,
    auth: ScimAuth,
    State(s): State<AppState>,
    p: IdPath,
    h: HeaderMap,
) -> Result<Response, ScimError> {
    let (id, if_match) = (id_of(p)?, header_str(&h, header::IF_MATCH));
    match rt {
        ResourceType::User => s.provisioning.delete_user(&auth.ctx, &id, if_match).await?,
        ResourceType::Group => {
            s.provisioning
                .delete_group(&auth.ctx, &id, if_match)
                .await?
        }
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn service_provider_config(auth: ScimAuth) -> Response {
    respond(
        StatusCode::OK,
        &discovery::service_provider_config(&auth.ctx.base_url),
        None,
        None,
    )
}

async fn resource_types(auth: ScimAuth) -> Response {
    respond(
        StatusCode::OK,
        &discovery::resource_types(&auth.ctx.base_url),
        None,
        None,
    )
}

async fn resource_type(auth: ScimAuth, p: IdPath) -> Result<Response, ScimError> {
    let id = id_of(p)?;
    let body = discovery::resource_type(&auth.ctx.base_url, &id)
        .ok_or_else(|| ScimError::NotFound(format!("no resource type \"{}\"", clip(&id))))?;
    Ok(respond(StatusCode::OK, &body, None, None))
}

async fn schemas(auth: ScimAuth) -> Response {
    respond(
        StatusCode::OK,
        &discovery::schemas(&auth.ctx.base_url),
        None,
        None,
    )
}

async fn schema(auth: ScimAuth, p: IdPath) -> Result<Response, ScimError> {
    let id = id_of(p)?;
    let body = discovery::schema(&auth.ctx.base_url, &id)
        .ok_or_else(|| ScimError::NotFound(format!("no schema \"{}\"", clip(&id))))?;
    Ok(respond(StatusCode::OK, &body, None, None))
}

/// RFC 7644 §3.7: Bulk is optional and `bulk.supported` is false. An oversize body is still
/// a 413 first, so the limit holds for every endpoint.
async fn bulk(_auth: ScimAuth, _body: ScimBytes) -> ScimError {
    ScimError::NotImplemented("Bulk")
}

async fn unknown(_auth: ScimAuth) -> ScimError {
    ScimError::NotFound("no such SCIM endpoint".into())
}

async fn no_such_endpoint() -> ScimError {
    ScimError::NotFound("SCIM lives under /scim/v2/{provider}/".into())
}

fn clip(s: &str) -> String {
    s.chars().take(100).collect()
}

/// The raw body, refused with 413 when over [`MAX_PAYLOAD`]: by `Content-Length` before
/// reading, and while reading when the length was not announced.
pub struct ScimBytes(pub Bytes);

impl FromRequest<AppState> for ScimBytes {
    type Rejection = ScimError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let announced = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if announced.is_some_and(|n| n > MAX_PAYLOAD as u64) {
            return Err(ScimError::PayloadTooLarge);
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ScimError::PayloadTooLarge
            } else {
                ScimError::InvalidSyntax("the request body could not be read".into())
            }
        })?;
        Ok(ScimBytes(bytes))
    }
}

/// A JSON body sent as `application/scim+json` or `application/json` (RFC 7644 §3.1), or with
/// no content type at all; anything else is a 415.
pub struct ScimBody(pub Value);

impl FromRequest<AppState> for ScimBody {
    type Rejection = ScimError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(ct) = req.headers().get(header::CONTENT_TYPE) {
            let ct = ct.to_str().unwrap_or_default();
            let media = ct.split(';').next().unwrap_or_default().trim();
            if !media.eq_ignore_ascii_case(SCIM_CONTENT_TYPE)
                && !media.eq_ignore_ascii_case("application/json")
            {
                return Err(ScimError::UnsupportedMediaType);
            }
        }
        let ScimBytes(bytes) = ScimBytes::from_request(req, state).await?;
        if bytes.is_empty() {
            return Err(ScimError::InvalidSyntax("the request body is empty".into()));
        }
        // serde_json stops at 128 levels of nesting, so a hostile body cannot exhaust the stack.
        serde_json::from_slice(&bytes)
            .map(ScimBody)
            .map_err(|e| ScimError::InvalidSyntax(format!("the body is not valid JSON: {e}")))
    }
}
