//! The Lever v1 side of the sandbox (opportunities, files, notes, `perform_as`).

use super::*;

pub(super) fn lever_error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({"code": code, "message": message}))).into_response()
}

pub(super) fn lever_authorised(headers: &HeaderMap) -> Result<(), Response> {
    match basic_credentials(headers) {
        Some((u, _)) if u == LEVER_API_KEY => Ok(()),
        _ => Err(lever_error(
            StatusCode::UNAUTHORIZED,
            "UnauthorizedError",
            "Invalid API key",
        )),
    }
}

pub(super) fn perform_as(q: &BTreeMap<String, String>) -> Result<(), Response> {
    match q.get("perform_as") {
        Some(u) if !u.is_empty() => Ok(()),
        _ => Err(lever_error(
            StatusCode::BAD_REQUEST,
            "BadRequestError",
            "perform_as is required for this request",
        )),
    }
}

pub(super) fn lever_page<T: Serialize>(items: &[T], q: &BTreeMap<String, String>) -> Response {
    let limit = q
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(100)
        .clamp(1, 100);
    let offset = q
        .get("offset")
        .and_then(|o| o.parse::<usize>().ok())
        .unwrap_or(0);
    let page: Vec<&T> = items.iter().skip(offset).take(limit).collect();
    let has_next = offset + limit < items.len();
    let mut body = json!({"data": page, "hasNext": has_next});
    if has_next {
        body["next"] = Value::String((offset + limit).to_string());
    }
    Json(body).into_response()
}

pub(super) async fn lever_upload(
    State(s): State<Sandbox>,
    headers: HeaderMap,
    Path(opp): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
    mut multipart: Multipart,
) -> Response {
    if let Err(r) = lever_authorised(&headers).and_then(|_| perform_as(&q)) {
        return r;
    }
    let mut file = None;
    loop {
        match multipart.next_field().await {
            Ok(Some(f)) => {
                if f.name() != Some("file") {
                    continue;
                }
                let name = f.file_name().unwrap_or("").to_owned();
                match f.bytes().await {
                    Ok(b) => file = Some((name, b)),
                    Err(_) => {
                        return lever_error(
                            StatusCode::BAD_REQUEST,
                            "BadRequestError",
                            "unreadable multipart body",
                        );
                    }
                }
            }
            Ok(None) => break,
            Err(_) => {
                return lever_error(
                    StatusCode::BAD_REQUEST,
                    "BadRequestError",
                    "unreadable multipart body",
                );
            }
        }
    }
    let Some((name, bytes)) = file.filter(|(n, _)| !n.is_empty()) else {
        return lever_error(
            StatusCode::BAD_REQUEST,
            "BadRequestError",
            "a multipart part named 'file' with a filename is required",
        );
    };
    if bytes.len() > crate::ats::lever::MAX_FILE_BYTES {
        return lever_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLarge",
            "files are limited to 30 MB",
        );
    }
    let mut g = s.lock();
    if g.data
        .lever
        .get(&opp)
        .is_some_and(|o| o.files.iter().any(|f| f.name == name))
    {
        if g.cfg.duplicates == Duplicates::Reject {
            return lever_error(
                StatusCode::CONFLICT,
                "ConflictError",
                "a file with this name exists",
            );
        }
        g.data.duplicate_writes += 1;
    }
    g.next_id += 1;
    let f = LeverFile {
        id: format!("{:08x}-sandbox-file", g.next_id),
        name: name.clone(),
        size: bytes.len(),
        sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)),
    };
    let ext = name.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    let out = json!({"data": {
        "id": f.id, "name": f.name, "ext": ext, "size": f.size, "status": "processed",
        "uploadedAt": time::OffsetDateTime::now_utc().unix_timestamp() * 1000,
        "downloadUrl": format!("/v1/opportunities/{opp}/files/{}/download", f.id),
    }});
    g.data.lever.entry(opp).or_default().files.push(f);
    Json(out).into_response()
}

/// Test set-up: an opportunity of a contact (body `{"contact": "C"}`).
pub(super) async fn lever_register(
    State(s): State<Sandbox>,
    Path(opp): Path<String>,
    Json(body): Json<Value>,
) -> StatusCode {
    let contact = body["contact"].as_str().map(str::to_owned);
    s.lock().data.lever.entry(opp).or_default().contact = contact;
    StatusCode::NO_CONTENT
}

/// Test set-up: a Lever user deletes the opportunity (its files and notes go with it).
pub(super) async fn lever_user_deletes(
    State(s): State<Sandbox>,
    Path(opp): Path<String>,
) -> StatusCode {
    let mut g = s.lock();
    let o = g.data.lever.entry(opp).or_default();
    o.files.clear();
    o.notes.clear();
    o.deleted = true;
    StatusCode::NO_CONTENT
}

/// `GET /v1/opportunities/{id}`: `{data: {id, contact}}`, or 404 once deleted. Ids the sandbox
/// has not seen exist (opportunities are created by the tests' uploads as they go).
pub(super) async fn lever_get_opportunity(
    State(s): State<Sandbox>,
    headers: HeaderMap,
    Path(opp): Path<String>,
) -> Response {
    if let Err(r) = lever_authorised(&headers) {
        return r;
    }
    let g = s.lock();
    match g.data.lever.get(&opp) {
        Some(o) if o.deleted => lever_error(
            StatusCode::NOT_FOUND,
            "NotFoundError",
            "Opportunity not found",
        ),
        o => Json(json!({"data": {"id": opp, "contact": o.and_then(|o| o.contact.clone())}}))
            .into_response(),
    }
}

/// `GET /v1/opportunities?contact_id=C`: the contact's opportunities that are not deleted.
pub(super) async fn lever_list_opportunities(
    State(s): State<Sandbox>,
    headers: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    if let Err(r) = lever_authorised(&headers) {
        return r;
    }
    let g = s.lock();
    let contact = q.get("contact_id");
    let items: Vec<Value> = g
        .data
        .lever
        .iter()
        .filter(|(_, o)| !o.deleted && contact.is_none_or(|c| o.contact.as_ref() == Some(c)))
        .map(|(id, o)| json!({"id": id, "contact": o.contact}))
        .collect();
    lever_page(&items, &q)
}

/// Lists one kind of item of an opportunity (Lever's `{data, hasNext, next}` pages).
pub(super) fn lever_list<T: Serialize>(
    s: &Sandbox,
    headers: &HeaderMap,
    opp: &str,
    q: &BTreeMap<String, String>,
    items: fn(&LeverOpportunity) -> &[T],
) -> Response {
    if let Err(r) = lever_authorised(headers) {
        return r;
    }
    let g = s.lock();
    lever_page(g.data.lever.get(opp).map(items).unwrap_or(&[]), q)
}

pub(super) async fn lever_list_files(
    State(s): State<Sandbox>,
    headers: HeaderMap,
    Path(opp): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    lever_list(&s, &headers, &opp, &q, |o| &o.files)
}

pub(super) async fn lever_note(
    State(s): State<Sandbox>,
    headers: HeaderMap,
    Path(opp): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
    body: Bytes,
) -> Response {
    if let Err(r) = lever_authorised(&headers).and_then(|_| perform_as(&q)) {
        return r;
    }
    let bad = |m: &str| lever_error(StatusCode::BAD_REQUEST, "BadRequestError", m);
    let Ok(Value::Object(o)) = serde_json::from_slice::<Value>(&body) else {
        return bad("body must be a JSON object");
    };
    if o.keys().any(|k| {
        !["value", "secret", "score", "notifyFollowers", "createdAt"].contains(&k.as_str())
    }) {
        return bad("unknown field");
    }
    let Some(value) = o
        .get("value")
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
    else {
        return bad("value is required");
    };
    let mut g = s.lock();
    g.next_id += 1;
    let n = LeverNote {
        id: format!("{:08x}-sandbox-note", g.next_id),
        value: value.to_owned(),
    };
    let out = json!({"data": {"id": n.id}});
    g.data.lever.entry(opp).or_default().notes.push(n);
    Json(out).into_response()
}

/// Notes as Lever lists them: the text in `text` and in `fields[].value`, never at the top
/// level (a client that looks for a top-level `value` finds nothing and posts twice).
pub(super) async fn lever_list_notes(
    State(s): State<Sandbox>,
    headers: HeaderMap,
    Path(opp): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    if let Err(r) = lever_authorised(&headers) {
        return r;
    }
    let g = s.lock();
    let notes: Vec<Value> = g
        .data
        .lever
        .get(&opp)
        .map(|o| o.notes.as_slice())
        .unwrap_or(&[])
        .iter()
        .map(|n| {
            json!({"id": n.id, "text": n.value, "secret": false,
                "fields": [{"type": "note", "text": "", "value": n.value}]})
        })
        .collect();
    lever_page(&notes, &q)
}
