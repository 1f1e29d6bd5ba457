//! The wasm OCI artifact layout (CNCF TAG Runtime, `application/vnd.wasm.config.v0+json`): a
//! manifest whose config describes the component and whose single layer is the component itself.
//! Written by `plugins push`, read by every pull.

use std::collections::BTreeMap;

use oci_client::client::{Config, ImageLayer};
use oci_client::manifest::{OciDescriptor, OciImageManifest};
use serde::Serialize;

/// Config media type of a wasm artifact.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
/// Layer media type of a wasm component.
pub const LAYER_MEDIA_TYPE: &str = "application/wasm";
/// The layer type of older tools (wasm-to-oci), still accepted on pull.
const LEGACY_LAYER_MEDIA_TYPE: &str = oci_client::manifest::WASM_LAYER_MEDIA_TYPE;
/// Manifest annotation naming the `voice:policy` world(s) the component was checked against.
pub const WORLD_ANNOTATION: &str = "dev.voice-host.plugin.world";
/// Standard annotation carrying the component's file name (also the plug-in's name).
const TITLE_ANNOTATION: &str = "org.opencontainers.image.title";
/// Standard annotation with the creation time.
const CREATED_ANNOTATION: &str = "org.opencontainers.image.created";
/// Largest component a pull accepts: an interpreter-based component is tens of MiB.
pub const MAX_COMPONENT_BYTES: u64 = 256 * 1024 * 1024;

/// What the artifact's config says of the component.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WasmConfig<'a> {
    created: &'a str,
    architecture: &'static str,
    os: &'static str,
    layer_digests: Vec<String>,
    component: ComponentTypes<'a>,
}

#[derive(Serialize)]
struct ComponentTypes<'a> {
    exports: &'a [String],
    imports: &'a [String],
}

/// A component to publish.
pub struct Publication<'a> {
    /// The component's bytes.
    pub bytes: Vec<u8>,
    /// File name recorded in the title annotation, e.g. `barge_in_smart.wasm`.
    pub file_name: &'a str,
    /// Fully qualified worlds it fits, e.g. `voice:policy/barge-in-policy@0.1.0`.
    pub worlds: &'a [String],
    /// Names the component imports and exports.
    pub imports: &'a [String],
    pub exports: &'a [String],
    /// RFC 3339 creation time.
    pub created: &'a str,
}

/// The layer, config and manifest of `p`.
pub fn build(p: Publication<'_>) -> (ImageLayer, Config, OciImageManifest) {
    let layer = ImageLayer::new(
        p.bytes,
        LAYER_MEDIA_TYPE.to_string(),
        Some(BTreeMap::from([(
            TITLE_ANNOTATION.to_string(),
            p.file_name.to_string(),
        )])),
    );
    let config = WasmConfig {
        created: p.created,
        architecture: "wasm",
        os: "wasip2",
        layer_digests: vec![layer.sha256_digest()],
        component: ComponentTypes {
            exports: p.exports,
            imports: p.imports,
        },
    };
    let config = Config::new(
        serde_json::to_vec(&config).expect("the config serialises"),
        CONFIG_MEDIA_TYPE.to_string(),
        None,
    );
    let annotations = BTreeMap::from([
        (WORLD_ANNOTATION.to_string(), p.worlds.join(",")),
        (TITLE_ANNOTATION.to_string(), p.file_name.to_string()),
        (CREATED_ANNOTATION.to_string(), p.created.to_string()),
    ]);
    let manifest =
        OciImageManifest::build(std::slice::from_ref(&layer), &config, Some(annotations));
    (layer, config, manifest)
}

/// The component layer of a pulled manifest: exactly one wasm layer, of a sane size.
pub fn component_layer(manifest: &OciImageManifest) -> Result<&OciDescriptor, String> {
    let wasm: Vec<&OciDescriptor> = manifest
        .layers
        .iter()
        .filter(|l| l.media_type == LAYER_MEDIA_TYPE || l.media_type == LEGACY_LAYER_MEDIA_TYPE)
        .collect();
    let layer = match wasm.as_slice() {
        [one] => *one,
        [] => {
            let types: Vec<&str> = manifest
                .layers
                .iter()
                .map(|l| l.media_type.as_str())
                .collect();
            return Err(format!(
                "not a wasm artifact: no {LAYER_MEDIA_TYPE} layer (layers: {types:?})"
            ));
        }
        more => {
            return Err(format!(
                "{} wasm layers; expected one component",
                more.len()
            ))
        }
    };
    if layer.size < 0 || layer.size as u64 > MAX_COMPONENT_BYTES {
        return Err(format!(
            "the component layer is {} bytes, over the {} MiB limit",
            layer.size,
            MAX_COMPONENT_BYTES / (1024 * 1024)
        ));
    }
    Ok(layer)
}

/// The plug-in's name: the layer's (or manifest's) title without `.wasm`, when it is a plain
/// file name; otherwise `fallback`.
pub fn component_name(
    manifest: &OciImageManifest,
    layer: &OciDescriptor,
    fallback: &str,
) -> String {
    let title = layer
        .annotations
        .as_ref()
        .and_then(|a| a.get(TITLE_ANNOTATION))
        .or_else(|| manifest.annotations.as_ref()?.get(TITLE_ANNOTATION));
    let stem = title.map(|t| t.strip_suffix(".wasm").unwrap_or(t));
    match stem {
        Some(s)
            if !s.is_empty()
                && s.len() <= 64
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') =>
        {
            s.to_string()
        }
        _ => fallback.replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publication(bytes: &[u8]) -> (ImageLayer, Config, OciImageManifest) {
        build(Publication {
            bytes: bytes.to_vec(),
            file_name: "intent_keywords.wasm",
            worlds: &["voice:policy/intent-analyzer@0.1.0".to_string()],
            imports: &[],
            exports: &["analyze".to_string()],
            created: "2026-12-04T00:00:00Z",
        })
    }

    #[test]
    fn a_published_component_reads_back_as_one_named_layer() {
        let (layer, config, manifest) = publication(b"\0asm component");
        assert_eq!(manifest.config.media_type, CONFIG_MEDIA_TYPE);
        assert_eq!(manifest.config.digest, config.sha256_digest());
        let found = component_layer(&manifest).unwrap();
        assert_eq!(found.digest, layer.sha256_digest());
        assert_eq!(
            component_name(&manifest, found, "intent"),
            "intent_keywords"
        );
        let cfg: serde_json::Value = serde_json::from_slice(&config.data).unwrap();
        assert_eq!(cfg["layerDigests"][0], layer.sha256_digest());
        assert_eq!(cfg["os"], "wasip2");
        assert_eq!(
            manifest.annotations.unwrap()[WORLD_ANNOTATION],
            "voice:policy/intent-analyzer@0.1.0"
        );
    }

    #[test]
    fn images_and_oversized_layers_are_refused() {
        let (_, _, mut manifest) = publication(b"x");
        manifest.layers[0].media_type = "application/vnd.oci.image.layer.v1.tar".into();
        assert!(component_layer(&manifest)
            .unwrap_err()
            .contains("not a wasm artifact"));
        manifest.layers[0].media_type = LAYER_MEDIA_TYPE.into();
        manifest.layers[0].size = MAX_COMPONENT_BYTES as i64 + 1;
        assert!(component_layer(&manifest).unwrap_err().contains("limit"));
        let twice = manifest.layers[0].clone();
        manifest.layers[0].size = 1;
        manifest.layers.push(twice);
        assert!(component_layer(&manifest)
            .unwrap_err()
            .contains("2 wasm layers"));
    }

    #[test]
    fn a_title_that_is_not_a_plain_file_name_is_not_used_as_a_name() {
        let (_, _, mut manifest) = publication(b"x");
        let mut layer = manifest.layers[0].clone();
        layer.annotations = Some(BTreeMap::from([(
            TITLE_ANNOTATION.to_string(),
            "../../etc/passwd".to_string(),
        )]));
        manifest.annotations = None;
        assert_eq!(component_name(&manifest, &layer, "barge-in"), "barge-in");
    }
}
