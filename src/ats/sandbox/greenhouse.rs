//! The Greenhouse Harvest v3 side of the sandbox (OAuth client credentials, candidates,
//! applications, attachments, custom fields, interviews).

use super::*;

pub(super) fn gh_error(status: StatusCode, message: &str, field: Option<&str>) -> Response {
    let body = match field {
        Some(f) => {
            json!({"message": "Validation error", "errors": [{"message": message, "field": f}]})
        }
        None => json!({"message": message}),
    };
    (status, Json(body)).into_response()
}

pub(super) fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let b64 = v.strip_prefix("Basic ")?;
    let raw = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    let s = String::from_utf8(raw).ok()?;
    let (u, p) = s.split_once(':')?;
    Some((u.to_owned(), p.to_owned()))
}

pub(super) async fn gh_token(
    State(s): State<Sandbox>,
    headers: HeaderMap,
    body: axum::extract::Form<BTreeMap<String, String>>,
) -> Response {
    match basic_credentials(&headers) {
        Some((u, p)) if u == GREENHOUSE_CLIENT_ID && p == GREENHOUSE_CLIENT_SECRET => {}
        _ => {
            return (
                StatusCode::UNAUTHORIZED,
                Json(json!({"error": "invalid_client"})),
            )
                .into_response();
        }
    }
    if body.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "unsupported_grant_type"})),
        )
            .into_response();
    }
    if body.get("sub").is_some_and(|s| s.parse::<u64>().is_err()) {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_request", "error_description": "sub must be a user id"})),
        )
            .into_response();
    }
    let mut g = s.lock();
    let ttl = g.cfg.token_ttl;
    let token = format!("gh_{:032x}", g.rng.r#gen::<u128>());
    g.tokens.insert(token.clone(), Instant::now() + ttl);
    g.data.tokens_issued += 1;
    let expires_at = crate::report::rfc3339(time::OffsetDateTime::now_utc() + ttl);
    Json(json!({"token_type": "Bearer", "access_token": token, "expires_at": expires_at}))
        .into_response()
}

pub(super) fn gh_authorised(s: &Sandbox, headers: &HeaderMap) -> Result<(), Response> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let g = s.lock();
    match token.and_then(|t| g.tokens.get(t)) {
        Some(exp) if *exp > Instant::now() => Ok(()),
        _ => Err(gh_error(StatusCode::UNAUTHORIZED, "Unauthorized", None)),
    }
}

/// Test set-up: a Greenhouse user deletes a candidate or an application.
pub(super) async fn gh_user_deletes(
    State(s): State<Sandbox>,
    Path((kind, id)): Path<(String, String)>,
) -> StatusCode {
    s.lock()
        .data
        .greenhouse_deleted
        .insert(format!("{kind}/{id}"));
    StatusCode::NO_CONTENT
}

/// `GET /v3/{candidates|applications}?ids=A,B`: the listed records that exist (any id the
/// sandbox was not told was deleted), as a bare array.
pub(super) fn gh_list_ids(
    s: &Sandbox,
    headers: &HeaderMap,
    q: &BTreeMap<String, String>,
    kind: &str,
) -> Response {
    if let Err(r) = gh_authorised(s, headers) {
        return r;
    }
    let Some(ids) = q.get("ids") else {
        return gh_error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "ids is required",
            Some("ids"),
        );
    };
    let g = s.lock();
    let listed: Vec<Value> = ids
        .split(',')
        .filter(|id| !id.is_empty() && !g.data.greenhouse_deleted.contains(&format!("{kind}/{id}")))
        .map(|id| json!({"id": id.parse::<u64>().map_or(json!(id), |n| json!(n))}))
        .collect();
    Json(listed).into_response()
}

pub(super) async fn gh_list_candidates(
    State(s): State<Sandbox>,
    headers: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    gh_list_ids(&s, &headers, &q, "candidates")
}

pub(super) async fn gh_list_applications(
    State(s): State<Sandbox>,
    headers: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    gh_list_ids(&s, &headers, &q, "applications")
}

#[derive(Serialize, Deserialize)]
struct Cursor {
    application_ids: Vec<u64>,
    #[serde(rename = "type")]
    kind: Option<String>,
    per_page: usize,
    offset: usize,
}

pub(super) fn attachment_json(a: &GhAttachment) -> Value {
    json!({
        "id": a.id,
        "application_id": a.application_id,
        "filename": a.filename,
        "type": a.kind,
        "visibility": a.visibility,
        "url": format!("https://sandbox.invalid/attachments/{}?expires=604800", a.id),
        "created_at": a.created_at,
    })
}

pub(super) async fn gh_list(
    State(s): State<Sandbox>,
    headers: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    if let Err(r) = gh_authorised(&s, &headers) {
        return r;
    }
    let cursor = match list_cursor(&q) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let g = s.lock();
    let all: Vec<&GhAttachment> = g
        .data
        .greenhouse
        .iter()
        .filter(|(id, _)| cursor.application_ids.is_empty() || cursor.application_ids.contains(id))
        .flat_map(|(_, a)| a.attachments.iter())
        .filter(|a| cursor.kind.as_ref().is_none_or(|k| &a.kind == k))
        .collect();
    let page: Vec<Value> = all
        .iter()
        .skip(cursor.offset)
        .take(cursor.per_page)
        .map(|a| attachment_json(a))
        .collect();
    let mut resp = Json(Value::Array(page)).into_response();
    if cursor.offset + cursor.per_page < all.len() {
        let next = Cursor {
            offset: cursor.offset + cursor.per_page,
            ..cursor
        };
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(&next).expect("cursor serialises"));
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost");
        let link = format!("<http://{host}/v3/attachments?cursor={token}>; rel=\"next\"");
        if let Ok(v) = HeaderValue::from_str(&link) {
            resp.headers_mut().insert(header::LINK, v);
        }
    }
    resp
}

/// Greenhouse's 422 for a bad query parameter.
fn bad_query(message: &str, field: &str) -> Response {
    gh_error(StatusCode::UNPROCESSABLE_ENTITY, message, Some(field))
}

/// The page a list request asks for: its `cursor` alone (a page after the first), or the
/// filters of a first page. A bad query is Greenhouse's 422.
fn list_cursor(q: &BTreeMap<String, String>) -> Result<Cursor, Response> {
    let Some(c) = q.get("cursor") else {
        return first_cursor(q);
    };
    if q.len() > 1 {
        return Err(bad_query(
            "cursor must be the only query parameter",
            "cursor",
        ));
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(c)
        .ok()
        .and_then(|b| serde_json::from_slice::<Cursor>(&b).ok())
        .ok_or_else(|| bad_query("invalid cursor", "cursor"))
}

/// A first page's filters: application ids (at most 50), attachment type, page size.
fn first_cursor(q: &BTreeMap<String, String>) -> Result<Cursor, Response> {
    const KNOWN: [&str; 5] = [
        "application_ids",
        "type",
        "per_page",
        "candidate_ids",
        "ids",
    ];
    if let Some(k) = q.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(bad_query("unknown query parameter", k));
    }
    let per_page = match q.get("per_page").map(|p| p.parse::<usize>()) {
        None => 100,
        Some(Ok(n)) if (1..=500).contains(&n) => n,
        _ => return Err(bad_query("per_page must be 1..500", "per_page")),
    };
    let ids: Result<Vec<u64>, _> = q
        .get("application_ids")
        .map(|v| v.split(',').map(|x| x.trim().parse::<u64>()).collect())
        .unwrap_or(Ok(Vec::new()));
    let Ok(application_ids) = ids else {
        return Err(bad_query(
            "application_ids must be integers",
            "application_ids",
        ));
    };
    if application_ids.len() > 50 {
        return Err(bad_query("at most 50 application_ids", "application_ids"));
    }
    Ok(Cursor {
        application_ids,
        kind: q.get("type").cloned(),
        per_page,
        offset: 0,
    })
}

const GH_TYPES: [&str; 10] = [
    "resume",
    "cover_letter",
    "take_home_test",
    "offer_packet",
    "offer_letter",
    "signed_offer_letter",
    "midfunnel_agreement",
    "automated_agreement",
    "form_attachment",
    "other",
];

/// A validated attachment upload (Harvest's "Add Attachment to Application").
struct GhUpload {
    application_id: u64,
    filename: String,
    extension: String,
    kind: String,
    content: Vec<u8>,
    visibility: String,
}

/// Validates an upload body field by field, answering the first fault as Harvest does (422
/// naming the field; 400 for a body that is not a JSON object).
fn gh_upload(body: &[u8]) -> Result<GhUpload, Response> {
    let invalid = |m: &str, f: &str| gh_error(StatusCode::UNPROCESSABLE_ENTITY, m, Some(f));
    let Ok(Value::Object(o)) = serde_json::from_slice::<Value>(body) else {
        return Err(gh_error(
            StatusCode::BAD_REQUEST,
            "body must be a JSON object",
            None,
        ));
    };
    const FIELDS: [&str; 6] = [
        "application_id",
        "filename",
        "type",
        "content",
        "url",
        "visibility",
    ];
    if let Some(k) = o.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(invalid("unknown field", k));
    }
    let Some(application_id) = o.get("application_id").and_then(Value::as_u64) else {
        return Err(invalid("must be an integer", "application_id"));
    };
    let Some(filename) = o.get("filename").and_then(Value::as_str) else {
        return Err(invalid("is required", "filename"));
    };
    let Some((_, extension)) = filename
        .rsplit_once('.')
        .filter(|(b, e)| !b.is_empty() && !e.is_empty())
    else {
        return Err(invalid("must include an extension", "filename"));
    };
    let kind = o.get("type").and_then(Value::as_str).unwrap_or("");
    if !GH_TYPES.contains(&kind) {
        return Err(invalid("is not a valid attachment type", "type"));
    }
    let content = match (o.get("content"), o.get("url")) {
        (Some(Value::String(c)), None) => base64::engine::general_purpose::STANDARD
            .decode(c)
            .map_err(|_| invalid("must be base64", "content"))?,
        (None, Some(Value::String(_))) => Vec::new(),
        _ => {
            return Err(invalid(
                "exactly one of content or url is required",
                "content",
            ));
        }
    };
    let visibility = match o.get("visibility").map(|v| v.as_str()) {
        None => "admin_only",
        Some(Some(v @ ("public" | "private" | "admin_only"))) => v,
        Some(_) => {
            return Err(invalid(
                "must be public, private or admin_only",
                "visibility",
            ));
        }
    };
    Ok(GhUpload {
        application_id,
        filename: filename.to_owned(),
        extension: extension.to_owned(),
        kind: kind.to_owned(),
        content,
        visibility: visibility.to_owned(),
    })
}

pub(super) async fn gh_create(
    State(s): State<Sandbox>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = gh_authorised(&s, &headers) {
        return r;
    }
    let up = match gh_upload(&body) {
        Ok(up) => up,
        Err(r) => return r,
    };
    let invalid = |m: &str, f: &str| gh_error(StatusCode::UNPROCESSABLE_ENTITY, m, Some(f));
    let mut g = s.lock();
    if g.cfg
        .blocked_extensions
        .iter()
        .any(|b| b.eq_ignore_ascii_case(&up.extension))
    {
        return invalid(
            "this file extension is blocked by your organization",
            "filename",
        );
    }
    let app = up.application_id;
    let duplicate = g
        .data
        .greenhouse
        .get(&app)
        .is_some_and(|a| a.attachments.iter().any(|x| x.filename == up.filename));
    if duplicate {
        if g.cfg.duplicates == Duplicates::Reject {
            return invalid(
                "an attachment with this filename already exists",
                "filename",
            );
        }
        g.data.duplicate_writes += 1;
    }
    g.next_id += 1;
    let a = GhAttachment {
        id: g.next_id,
        application_id: app,
        filename: up.filename,
        kind: up.kind,
        visibility: up.visibility,
        size: up.content.len(),
        sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&up.content)),
        created_at: crate::report::now_rfc3339(),
    };
    let out = attachment_json(&a);
    g.data
        .greenhouse
        .entry(app)
        .or_default()
        .attachments
        .push(a);
    (StatusCode::CREATED, Json(out)).into_response()
}

pub(super) async fn gh_patch(
    State(s): State<Sandbox>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    if let Err(r) = gh_authorised(&s, &headers) {
        return r;
    }
    let Ok(app) = id.parse::<u64>() else {
        return gh_error(StatusCode::NOT_FOUND, "Resource not found", None);
    };
    let invalid = |m: &str, f: &str| gh_error(StatusCode::UNPROCESSABLE_ENTITY, m, Some(f));
    let Ok(Value::Object(o)) = serde_json::from_slice::<Value>(&body) else {
        return gh_error(StatusCode::BAD_REQUEST, "body must be a JSON object", None);
    };
    if let Some(k) = o.keys().find(|k| k.as_str() != "custom_fields") {
        return invalid("unknown or unsupported field in this sandbox", k);
    }
    let Some(Value::Array(fields)) = o.get("custom_fields") else {
        return invalid(
            "must be an array of {id | name_key, value}",
            "custom_fields",
        );
    };
    let mut updates = Vec::new();
    for f in fields {
        let Some(f) = f.as_object() else {
            return invalid("each entry must be an object", "custom_fields");
        };
        if f.keys()
            .any(|k| !["id", "name_key", "value", "delete_value"].contains(&k.as_str()))
        {
            return invalid("unknown key in a custom field entry", "custom_fields");
        }
        let key = match (f.get("id").and_then(Value::as_u64), f.get("name_key")) {
            (Some(id), None) => id.to_string(),
            (None, Some(Value::String(k))) => k.clone(),
            _ => {
                return invalid(
                    "each entry needs exactly one of id or name_key",
                    "custom_fields",
                );
            }
        };
        let Some(v) = f.get("value") else {
            return invalid("value is required", "custom_fields");
        };
        updates.push((key, v.clone()));
    }
    let mut g = s.lock();
    let a = g.data.greenhouse.entry(app).or_default();
    for (k, v) in updates {
        a.custom_fields.insert(k, v);
    }
    let cf = a.custom_fields.clone();
    Json(json!({"id": app, "custom_fields": cf})).into_response()
}

/// `GET /v3/interviews?starts_at=gte|T[&per_page=N]`: bare array (no pagination needed for the
/// sandbox's handful; a `cursor` is refused like Greenhouse does with other parameters).
pub(super) async fn gh_interviews(
    State(s): State<Sandbox>,
    headers: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    if let Err(r) = gh_authorised(&s, &headers) {
        return r;
    }
    for k in q.keys() {
        if !["starts_at", "per_page", "application_ids"].contains(&k.as_str()) {
            return gh_error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown query parameter",
                Some(k),
            );
        }
    }
    let since = match q.get("starts_at") {
        None => None,
        Some(v) => match v.split_once('|') {
            Some(("gte", t)) => Some(t.to_owned()),
            _ => {
                return gh_error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "expected starts_at=gte|<RFC 3339>",
                    Some("starts_at"),
                );
            }
        },
    };
    let g = s.lock();
    let list: Vec<Value> = g
        .interviews
        .iter()
        .filter(|i| {
            since
                .as_deref()
                .is_none_or(|t| i["start"]["date_time"].as_str().is_some_and(|st| st >= t))
        })
        .cloned()
        .collect();
    Json(Value::Array(list)).into_response()
}
