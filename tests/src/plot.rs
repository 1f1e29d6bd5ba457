//! Shared by the tools that draw PNG plots (soak, load-plot): plotters draws text with a
//! TrueType font registered at run time, DejaVu Sans from `fonts-dejavu-core`.

use plotters::style::{register_font, FontStyle};

const DEJAVU: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

/// Registers DejaVu Sans as `sans-serif`; a one-line reason when it is missing.
pub fn register_sans() -> Result<(), String> {
    let font = std::fs::read(DEJAVU)
        .map_err(|e| format!("plots need {DEJAVU} (fonts-dejavu-core): {e}"))?;
    register_font("sans-serif", FontStyle::Normal, Box::leak(font.into()))
        .map_err(|_| format!("{DEJAVU} is not a TrueType font"))
}
