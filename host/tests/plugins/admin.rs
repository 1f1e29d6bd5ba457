//! The admin endpoints: listing and reloading plug-ins behind a bearer token.

use crate::common::{install, settings, wasm, TempDir};
use voice_host::behaviour::defaults::BuiltinBehaviours;
use voice_host::plugins::{admin_routes, PluginRegistry, PluginSettings, SlotSettings};

async fn serve(router: axum::Router) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (base, task)
}

#[tokio::test]
async fn admin_endpoints_need_the_token_and_reload_swaps_versions() {
    let dir = TempDir::new("admin");
    let live = dir.path().join("policy.wasm");
    install(&wasm("barge-in-seed"), &live);
    let reg = PluginRegistry::start(
        PluginSettings {
            barge_in: SlotSettings::component(&live, vec![]),
            ..settings()
        },
        BuiltinBehaviours::default(),
    )
    .unwrap();
    let (base, server) = serve(admin_routes(reg.clone(), Some("s3cret-token".into()))).await;
    let http = reqwest::Client::new();

    let anonymous = http
        .get(format!("{base}/admin/plugins"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let wrong = http
        .post(format!("{base}/admin/plugins/reload"))
        .bearer_auth("guess")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let body = wrong.text().await.unwrap();
    assert!(
        !body.contains("s3cret"),
        "the token never appears in responses"
    );

    let listed: serde_json::Value = http
        .get(format!("{base}/admin/plugins"))
        .bearer_auth("s3cret-token")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["slots"][2]["plugin"], "policy");
    let before = listed["slots"][2]["version"].clone();

    install(&wasm("barge-in-smart"), &live);
    let reloaded = http
        .post(format!("{base}/admin/plugins/reload"))
        .bearer_auth("s3cret-token")
        .send()
        .await
        .unwrap();
    assert_eq!(reloaded.status(), 200);
    let body: serde_json::Value = reloaded.json().await.unwrap();
    assert_eq!(body["ok"], true);
    assert_ne!(body["slots"][2]["version"], before);

    std::fs::write(&live, b"not a component").unwrap();
    let rejected = http
        .post(format!("{base}/admin/plugins/reload"))
        .bearer_auth("s3cret-token")
        .send()
        .await
        .unwrap();
    assert_eq!(rejected.status(), 422);
    let body: serde_json::Value = rejected.json().await.unwrap();
    assert_eq!(body["ok"], false);
    assert!(
        body["error"].as_str().unwrap().contains("barge_in"),
        "{body}"
    );
    assert_ne!(
        body["slots"][2]["version"], before,
        "the loaded version stays"
    );
    server.abort();
}

#[tokio::test]
async fn admin_endpoints_do_not_exist_without_a_token() {
    let reg = PluginRegistry::start(settings(), BuiltinBehaviours::default()).unwrap();
    let (base, server) = serve(admin_routes(reg, None)).await;
    let http = reqwest::Client::new();
    let get = http
        .get(format!("{base}/admin/plugins"))
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 404);
    let post = http
        .post(format!("{base}/admin/plugins/reload"))
        .bearer_auth("anything")
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 404);
    server.abort();
}
