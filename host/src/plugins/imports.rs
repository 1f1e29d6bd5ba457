//! How a component's imports are satisfied: `voice:policy` from the host, the inert WASI
//! stand-ins for components that import WASI, and functions that trap for everything else.

use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Linker, ResourceType};
use wasmtime::Engine;

use super::bindings::HostState;
use super::wasi;
use super::worlds::World;

/// Builds the linker for `component` as world `W`.
pub(crate) fn linker_for<W: World>(
    engine: &Engine,
    component: &Component,
) -> wasmtime::Result<Linker<HostState>> {
    let mut linker = Linker::<HostState>::new(engine);
    W::add_to_linker(&mut linker)?;
    let imports: Vec<(String, ComponentItem)> = component
        .component_type()
        .imports(engine)
        .map(|(name, item)| (name.to_string(), item.ty))
        .collect();
    let uses_wasi = imports.iter().any(|(name, _)| name.starts_with("wasi:"));
    if uses_wasi {
        wasi::add_to_linker(&mut linker)?;
    }
    for (name, item) in imports {
        let linked = name.starts_with("voice:policy/") || (uses_wasi && wasi::provides(&name));
        if !linked {
            trap_import(&mut linker, &name, item, engine)?;
        }
    }
    Ok(linker)
}

/// Links import `name` to functions that trap when called (e.g. sockets, or WASI that Rust's
/// standard library references for panic messages but a plug-in never reaches). Unlike
/// `Linker::define_unknown_imports_as_traps` this never shadows a newer semver-compatible
/// definition: it is called only for imports nothing else provides.
fn trap_import(
    linker: &mut Linker<HostState>,
    name: &str,
    item: ComponentItem,
    engine: &Engine,
) -> wasmtime::Result<()> {
    match item {
        ComponentItem::ComponentInstance(instance) => {
            let mut inner = linker.instance(name)?;
            for (export, ext) in instance.exports(engine) {
                match ext.ty {
                    ComponentItem::ComponentFunc(_) => {
                        let what = format!("{name}#{export}");
                        inner.func_new(export, move |_, _, _, _| Err(unavailable(&what)))?;
                    }
                    ComponentItem::Resource(_) => {
                        inner.resource(export, ResourceType::host::<()>(), |_, _| Ok(()))?;
                    }
                    _ => {}
                }
            }
        }
        ComponentItem::ComponentFunc(_) => {
            let what = name.to_string();
            linker
                .root()
                .func_new(name, move |_, _, _, _| Err(unavailable(&what)))?;
        }
        ComponentItem::Resource(_) => {
            linker
                .root()
                .resource(name, ResourceType::host::<()>(), |_, _| Ok(()))?;
        }
        _ => wasmtime::bail!("cannot link import `{name}`: plug-ins may import only interfaces"),
    }
    Ok(())
}

fn unavailable(what: &str) -> wasmtime::Error {
    wasmtime::Error::msg(format!("`{what}` is not available to plug-ins"))
}
