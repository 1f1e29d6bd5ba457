//! Smart Turn v3.2 on ONNX Runtime: features in, probability that the turn is complete out.
//!
//! Why ONNX Runtime (through `ort`, loading the `libonnxruntime` that `voice-host models
//! install` takes from the `onnxruntime` wheel) rather than a pure-Rust engine: the model is
//! int8-quantised, and `tract-onnx` gives wrong probabilities for its graph (it folds the
//! quantised Softmax into a lookup table) and is 5-8x slower with that pass skipped. ONNX
//! Runtime is what pipecat runs, and with these settings its numbers are pipecat's to float
//! rounding (the tests compare them). Loading the library at run time keeps the build free of
//! downloads and the binary free of a 35 MB dependency that a host without the model never uses.
//!
//! Session settings, as pipecat's `LocalSmartTurnAnalyzerV3`: sequential execution, one
//! intra-op and one inter-op thread (so inference runs on the calling thread, the worker's), and
//! graph optimisation at `Level3`, which answers exactly what pipecat's `ORT_ENABLE_ALL` answers
//! on the reference recordings. The level matters: without optimisation the quantised graph
//! runs other kernels and those probabilities move by up to 0.59.

use super::features::{FeatureExtractor, FEATURES_LEN, N_FRAMES, N_MELS};
use super::TurnModelError;
use ort::session::Session;
use ort::value::Tensor;
use std::path::Path;

/// The model's input: f32 `[batch, 80, 800]`.
const INPUT: &str = "input_features";
/// The model's output: f32 `[batch, 1]`, already a probability (a sigmoid ends the graph).
const OUTPUT: &str = "logits";

/// A loaded model with its feature extractor; used by one thread at a time (the worker's).
pub(crate) struct SmartTurn {
    session: Session,
    features: FeatureExtractor,
}

impl SmartTurn {
    /// Loads the runtime (once per process) and the model.
    pub(crate) fn load(model: &Path, runtime: &Path) -> Result<Self, TurnModelError> {
        let environment = crate::onnx_runtime::environment(runtime).map_err(|reason| {
            TurnModelError::Runtime {
                path: runtime.to_path_buf(),
                reason,
            }
        })?;
        let failed = |reason: String| TurnModelError::Model {
            path: model.to_path_buf(),
            reason,
        };
        let session = crate::onnx_runtime::session(&environment, model).map_err(failed)?;
        let names = |outlets: &[ort::value::Outlet]| -> Vec<String> {
            outlets.iter().map(|o| o.name().to_string()).collect()
        };
        if names(session.inputs()) != [INPUT]
            || !names(session.outputs()).iter().any(|n| n == OUTPUT)
        {
            return Err(failed(format!(
                "not a Smart Turn v3 model: inputs {:?}, outputs {:?} (expected {INPUT} -> {OUTPUT})",
                names(session.inputs()),
                names(session.outputs())
            )));
        }
        Ok(Self {
            session,
            features: FeatureExtractor::new(),
        })
    }

    /// Probabilities for each clip, in one run of the model.
    pub(crate) fn predict(&mut self, clips: &[&[f32]]) -> Result<Vec<f32>, TurnModelError> {
        let mut input = Vec::with_capacity(clips.len() * FEATURES_LEN);
        for clip in clips {
            input.extend(self.features.features(clip));
        }
        self.run(input, clips.len())
    }

    /// Runs the model on `batch` feature arrays laid end to end.
    pub(crate) fn run(
        &mut self,
        features: Vec<f32>,
        batch: usize,
    ) -> Result<Vec<f32>, TurnModelError> {
        let failed = |e: ort::Error| TurnModelError::Inference(e.to_string());
        debug_assert_eq!(features.len(), batch * FEATURES_LEN);
        let tensor = Tensor::from_array(([batch, N_MELS, N_FRAMES], features)).map_err(failed)?;
        let outputs = self
            .session
            .run(ort::inputs![INPUT => tensor])
            .map_err(failed)?;
        let (shape, values) = outputs[OUTPUT]
            .try_extract_tensor::<f32>()
            .map_err(failed)?;
        if values.len() != batch {
            return Err(TurnModelError::Inference(format!(
                "{OUTPUT} has shape {shape:?} for a batch of {batch}"
            )));
        }
        values
            .iter()
            .map(|&p| {
                if p.is_finite() {
                    Ok(p.clamp(0.0, 1.0))
                } else {
                    Err(TurnModelError::Inference(format!("the model answered {p}")))
                }
            })
            .collect()
    }
}
