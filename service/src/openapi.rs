//! The OpenAPI 3.1 document of the HTTP API, generated from the handlers'
//! annotations and the body types in [`crate::schema`], served at
//! `/api/v1/openapi.json`. The WebSocket's message schema is in
//! `docs/service-api.md` (OpenAPI does not describe WebSocket messages).

use axum::response::{IntoResponse, Response};
use axum::Json;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::{blobs_api, documents_api, http, schema};

#[derive(OpenApi)]
#[openapi(
    info(title = "peat-mesh node API", description = "A peat-mesh node as a service: node, peers, documents and blobs."),
    paths(
        http::health,
        http::ready,
        http::node_info,
        http::peers,
        documents_api::collections,
        documents_api::list,
        documents_api::find,
        documents_api::get_doc,
        documents_api::put_doc,
        documents_api::patch_doc,
        documents_api::delete_doc,
        blobs_api::upload,
        blobs_api::list,
        blobs_api::status,
        blobs_api::fetch,
        blobs_api::download,
        blobs_api::transfers,
    ),
    components(schemas(
        schema::ErrorBody,
        schema::ErrorDetail,
        schema::Health,
        schema::Ready,
        schema::NodeInfo,
        schema::PeerEntry,
        schema::Peers,
        schema::IdPage,
        schema::FoundDoc,
        schema::Found,
        schema::Document,
        schema::BlobEntry,
        schema::BlobList,
        schema::BlobState,
        schema::CollectionEntry,
        schema::Collections,
        schema::TransferEntry,
        schema::Transfers,
    )),
    modifiers(&Bearer),
)]
pub struct ApiDoc;

/// Declares the bearer-token scheme the routes name.
struct Bearer;

impl Modify for Bearer {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The document, as JSON.
pub(crate) async fn serve() -> Response {
    Json(ApiDoc::openapi()).into_response()
}
