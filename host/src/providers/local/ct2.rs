//! Reader for CTranslate2's `model.bin` (binary version 6) and the mapping of its Whisper
//! variable names to the names `candle-transformers`' Whisper expects.
//!
//! CTranslate2 fuses attention projections: self-attention `linear_0` holds query, key and value
//! stacked on the output axis; cross-attention `linear_1` holds key and value. Candle loads them
//! separately, so they are split at load. Whisper's key projection has no bias (CTranslate2
//! stores zeros there), so that slice of a fused bias is dropped.

use std::collections::BTreeMap;

/// Element types CTranslate2 writes (its `DataType` ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ct2Dtype {
    F32,
    I8,
    I16,
    I32,
    F16,
    Bf16,
}

impl Ct2Dtype {
    fn from_id(id: u8) -> Option<Self> {
        Some(match id {
            0 => Self::F32,
            1 => Self::I8,
            2 => Self::I16,
            3 => Self::I32,
            4 => Self::F16,
            5 => Self::Bf16,
            _ => return None,
        })
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Self::I8 => 1,
            Self::I16 | Self::F16 | Self::Bf16 => 2,
            Self::F32 | Self::I32 => 4,
        }
    }
}

/// One stored variable: shape, element type and a byte range of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ct2Variable {
    pub shape: Vec<usize>,
    pub dtype: Ct2Dtype,
    pub offset: usize,
    pub len: usize,
}

/// The parsed index of a `model.bin` (data stays in the caller's buffer).
#[derive(Debug, Clone, Default)]
pub struct Ct2Model {
    pub spec: String,
    pub variables: BTreeMap<String, Ct2Variable>,
}

/// Parses the index of a CTranslate2 model file held in `bytes`. Aliases resolve to the variable
/// they name.
pub fn parse(bytes: &[u8]) -> Result<Ct2Model, String> {
    let mut r = Reader { bytes, pos: 0 };
    let version = r.u32()?;
    if version != 6 {
        return Err(format!(
            "unsupported CTranslate2 binary version {version} (expected 6)"
        ));
    }
    let spec = r.string()?;
    let _revision = r.u32()?;
    let count = r.u32()? as usize;
    let mut variables = BTreeMap::new();
    for _ in 0..count {
        let name = r.string()?;
        let rank = r.u8()? as usize;
        let mut shape = Vec::with_capacity(rank);
        for _ in 0..rank {
            shape.push(r.u32()? as usize);
        }
        let dtype_id = r.u8()?;
        let dtype = Ct2Dtype::from_id(dtype_id)
            .ok_or_else(|| format!("{name}: unknown dtype {dtype_id}"))?;
        let len = r.u32()? as usize;
        let expected = shape.iter().product::<usize>() * dtype.size();
        if len != expected {
            return Err(format!(
                "{name}: {len} bytes for shape {shape:?} of {dtype:?}"
            ));
        }
        let offset = r.pos;
        r.skip(len)?;
        variables.insert(
            name,
            Ct2Variable {
                shape,
                dtype,
                offset,
                len,
            },
        );
    }
    let aliases = r.u32()? as usize;
    for _ in 0..aliases {
        let alias = r.string()?;
        let target = r.string()?;
        if let Some(v) = variables.get(&target).cloned() {
            variables.insert(alias, v);
        }
    }
    Ok(Ct2Model { spec, variables })
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or_else(|| format!("model file truncated at byte {}", self.pos))?;
        let slice = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(slice)
    }
    fn skip(&mut self, n: usize) -> Result<(), String> {
        self.take(n).map(|_| ())
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, String> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    /// A length-prefixed, NUL-terminated string.
    fn string(&mut self) -> Result<String, String> {
        let len = self.u16()? as usize;
        let raw = self.take(len)?;
        let raw = raw.strip_suffix(&[0]).unwrap_or(raw);
        String::from_utf8(raw.to_vec()).map_err(|_| "variable name is not UTF-8".to_string())
    }
}

/// Where a candle tensor comes from: a CTranslate2 variable, optionally a row range of it
/// (rows = first axis), which is how fused projections are split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorSource {
    pub ct2_name: String,
    pub rows: Option<(usize, usize)>,
    pub shape: Vec<usize>,
}

/// Whisper dimensions needed for the mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WhisperDims {
    pub d_model: usize,
    pub encoder_layers: usize,
    pub decoder_layers: usize,
}

impl WhisperDims {
    /// Reads the dimensions from the model's variables.
    pub fn infer(model: &Ct2Model) -> Result<Self, String> {
        let emb = model
            .variables
            .get("decoder/embeddings/weight")
            .ok_or("decoder/embeddings/weight missing: not a Whisper model")?;
        let d_model = *emb.shape.get(1).ok_or("embedding is not 2-D")?;
        let layers = |prefix: &str| {
            (0..)
                .take_while(|i| {
                    model
                        .variables
                        .keys()
                        .any(|k| k.starts_with(&format!("{prefix}/layer_{i}/")))
                })
                .count()
        };
        Ok(Self {
            d_model,
            encoder_layers: layers("encoder"),
            decoder_layers: layers("decoder"),
        })
    }
}

/// Maps every candle Whisper tensor name to its CTranslate2 source, checking shapes.
/// The encoder's sinusoidal positions are computed by candle and so are not mapped.
pub fn whisper_tensor_map(model: &Ct2Model) -> Result<BTreeMap<String, TensorSource>, String> {
    if model.spec != "WhisperSpec" {
        return Err(format!("model spec is {:?}, not WhisperSpec", model.spec));
    }
    let dims = WhisperDims::infer(model)?;
    let d = dims.d_model;
    let mut map = BTreeMap::new();
    let mut add =
        |candle: String, ct2: String, rows: Option<(usize, usize)>| -> Result<(), String> {
            let var = model
                .variables
                .get(&ct2)
                .ok_or_else(|| format!("{ct2} missing"))?;
            let mut shape = var.shape.clone();
            if let Some((start, end)) = rows {
                let first = shape
                    .first_mut()
                    .ok_or_else(|| format!("{ct2} is a scalar"))?;
                if end > *first {
                    return Err(format!("{ct2}: rows {start}..{end} out of {}", *first));
                }
                *first = end - start;
            }
            map.insert(
                candle,
                TensorSource {
                    ct2_name: ct2,
                    rows,
                    shape,
                },
            );
            Ok(())
        };
    let pair = |c: &str, ct: &str| {
        (
            format!("{c}.weight"),
            format!("{ct}/weight"),
            format!("{c}.bias"),
            format!("{ct}/bias"),
        )
    };

    for side in ["encoder", "decoder"] {
        let layers = if side == "encoder" {
            dims.encoder_layers
        } else {
            dims.decoder_layers
        };
        let c = format!("model.{side}");
        for i in 0..layers {
            let cl = format!("{c}.layers.{i}");
            let tl = format!("{side}/layer_{i}");
            // Self-attention: fused q,k,v.
            let qkv = format!("{tl}/self_attention/linear_0");
            for (j, proj) in ["q_proj", "k_proj", "v_proj"].iter().enumerate() {
                let rows = Some((j * d, (j + 1) * d));
                add(
                    format!("{cl}.self_attn.{proj}.weight"),
                    format!("{qkv}/weight"),
                    rows,
                )?;
                if *proj != "k_proj" {
                    add(
                        format!("{cl}.self_attn.{proj}.bias"),
                        format!("{qkv}/bias"),
                        rows,
                    )?;
                }
            }
            let (w, tw, b, tb) = pair(
                &format!("{cl}.self_attn.out_proj"),
                &format!("{tl}/self_attention/linear_1"),
            );
            add(w, tw, None)?;
            add(b, tb, None)?;
            ln(
                &mut add,
                &format!("{cl}.self_attn_layer_norm"),
                &format!("{tl}/self_attention/layer_norm"),
            )?;
            if side == "decoder" {
                // Cross-attention: separate q, fused k,v.
                let (w, tw, b, tb) = pair(
                    &format!("{cl}.encoder_attn.q_proj"),
                    &format!("{tl}/attention/linear_0"),
                );
                add(w, tw, None)?;
                add(b, tb, None)?;
                let kv = format!("{tl}/attention/linear_1");
                add(
                    format!("{cl}.encoder_attn.k_proj.weight"),
                    format!("{kv}/weight"),
                    Some((0, d)),
                )?;
                add(
                    format!("{cl}.encoder_attn.v_proj.weight"),
                    format!("{kv}/weight"),
                    Some((d, 2 * d)),
                )?;
                add(
                    format!("{cl}.encoder_attn.v_proj.bias"),
                    format!("{kv}/bias"),
                    Some((d, 2 * d)),
                )?;
                let (w, tw, b, tb) = pair(
                    &format!("{cl}.encoder_attn.out_proj"),
                    &format!("{tl}/attention/linear_2"),
                );
                add(w, tw, None)?;
                add(b, tb, None)?;
                ln(
                    &mut add,
                    &format!("{cl}.encoder_attn_layer_norm"),
                    &format!("{tl}/attention/layer_norm"),
                )?;
            }
            for (cn, tn) in [("fc1", "linear_0"), ("fc2", "linear_1")] {
                let (w, tw, b, tb) = pair(&format!("{cl}.{cn}"), &format!("{tl}/ffn/{tn}"));
                add(w, tw, None)?;
                add(b, tb, None)?;
            }
            ln(
                &mut add,
                &format!("{cl}.final_layer_norm"),
                &format!("{tl}/ffn/layer_norm"),
            )?;
        }
        ln(
            &mut add,
            &format!("{c}.layer_norm"),
            &format!("{side}/layer_norm"),
        )?;
    }
    for conv in ["conv1", "conv2"] {
        let (w, tw, b, tb) = pair(&format!("model.encoder.{conv}"), &format!("encoder/{conv}"));
        add(w, tw, None)?;
        add(b, tb, None)?;
    }
    add(
        "model.decoder.embed_tokens.weight".into(),
        "decoder/embeddings/weight".into(),
        None,
    )?;
    add(
        "model.decoder.embed_positions.weight".into(),
        "decoder/position_encodings/encodings".into(),
        None,
    )?;
    Ok(map)
}

/// Layer norm: CTranslate2's gamma/beta are candle's weight/bias.
fn ln(
    add: &mut impl FnMut(String, String, Option<(usize, usize)>) -> Result<(), String>,
    candle: &str,
    ct2: &str,
) -> Result<(), String> {
    add(format!("{candle}.weight"), format!("{ct2}/gamma"), None)?;
    add(format!("{candle}.bias"), format!("{ct2}/beta"), None)
}

/// Converts a variable's (or a row range's) raw data to f32.
pub fn to_f32(
    bytes: &[u8],
    var: &Ct2Variable,
    rows: Option<(usize, usize)>,
) -> Result<Vec<f32>, String> {
    let data = &bytes[var.offset..var.offset + var.len];
    let row_elems: usize = var.shape.iter().skip(1).product();
    let size = var.dtype.size();
    let data = match rows {
        Some((start, end)) => &data[start * row_elems * size..end * row_elems * size],
        None => data,
    };
    let out = match var.dtype {
        Ct2Dtype::F32 => data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Ct2Dtype::F16 => data
            .chunks_exact(2)
            .map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]])))
            .collect(),
        Ct2Dtype::Bf16 => data
            .chunks_exact(2)
            .map(|c| f32::from_bits((u16::from_le_bytes([c[0], c[1]]) as u32) << 16))
            .collect(),
        other => return Err(format!("cannot load {other:?} weights as floats")),
    };
    Ok(out)
}

/// IEEE 754 half to single precision.
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exp = ((h >> 10) & 0x1f) as u32;
    let mant = (h & 0x3ff) as u32;
    let bits = match exp {
        0 if mant == 0 => sign,
        0 => {
            // Subnormal: normalise.
            let mut e = 127 - 15 + 1;
            let mut m = mant;
            while m & 0x400 == 0 {
                m <<= 1;
                e -= 1;
            }
            sign | ((e as u32) << 23) | ((m & 0x3ff) << 13)
        }
        0x1f => sign | 0x7f80_0000 | (mant << 13),
        _ => sign | ((exp + 127 - 15) << 23) | (mant << 13),
    };
    f32::from_bits(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes a CTranslate2 v6 file with zero-filled fp16 variables of the given shapes.
    fn write_model(vars: &[(&str, Vec<usize>)], aliases: &[(&str, &str)]) -> Vec<u8> {
        fn string(out: &mut Vec<u8>, s: &str) {
            out.extend_from_slice(&((s.len() + 1) as u16).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
            out.push(0);
        }
        let mut out = Vec::new();
        out.extend_from_slice(&6u32.to_le_bytes());
        string(&mut out, "WhisperSpec");
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&(vars.len() as u32).to_le_bytes());
        for (name, shape) in vars {
            string(&mut out, name);
            out.push(shape.len() as u8);
            for d in shape {
                out.extend_from_slice(&(*d as u32).to_le_bytes());
            }
            out.push(4);
            let n: usize = shape.iter().product::<usize>() * 2;
            out.extend_from_slice(&(n as u32).to_le_bytes());
            out.extend(std::iter::repeat_n(0u8, n));
        }
        out.extend_from_slice(&(aliases.len() as u32).to_le_bytes());
        for (a, t) in aliases {
            string(&mut out, a);
            string(&mut out, t);
        }
        out
    }

    /// A one-layer Whisper in CTranslate2 layout with d_model = 8, vocab 20, 3 mel bins.
    fn tiny_whisper() -> Vec<u8> {
        let d = 8;
        let mut vars: Vec<(String, Vec<usize>)> = vec![
            ("encoder/conv1/weight".into(), vec![d, 3, 3]),
            ("encoder/conv1/bias".into(), vec![d]),
            ("encoder/conv2/weight".into(), vec![d, d, 3]),
            ("encoder/conv2/bias".into(), vec![d]),
            ("encoder/layer_norm/gamma".into(), vec![d]),
            ("encoder/layer_norm/beta".into(), vec![d]),
            ("decoder/layer_norm/gamma".into(), vec![d]),
            ("decoder/layer_norm/beta".into(), vec![d]),
            ("decoder/embeddings/weight".into(), vec![20, d]),
            ("decoder/position_encodings/encodings".into(), vec![16, d]),
        ];
        fn attn(vars: &mut Vec<(String, Vec<usize>)>, prefix: String, fused_rows: usize, d: usize) {
            vars.push((format!("{prefix}/linear_0/weight"), vec![fused_rows, d]));
            vars.push((format!("{prefix}/linear_0/bias"), vec![fused_rows]));
            vars.push((format!("{prefix}/layer_norm/gamma"), vec![d]));
            vars.push((format!("{prefix}/layer_norm/beta"), vec![d]));
        }
        for side in ["encoder", "decoder"] {
            let l = format!("{side}/layer_0");
            attn(&mut vars, format!("{l}/self_attention"), 3 * d, d);
            vars.push((format!("{l}/self_attention/linear_1/weight"), vec![d, d]));
            vars.push((format!("{l}/self_attention/linear_1/bias"), vec![d]));
            if side == "decoder" {
                attn(&mut vars, format!("{l}/attention"), d, d);
                vars.push((format!("{l}/attention/linear_1/weight"), vec![2 * d, d]));
                vars.push((format!("{l}/attention/linear_1/bias"), vec![2 * d]));
                vars.push((format!("{l}/attention/linear_2/weight"), vec![d, d]));
                vars.push((format!("{l}/attention/linear_2/bias"), vec![d]));
            }
            vars.push((format!("{l}/ffn/linear_0/weight"), vec![4 * d, d]));
            vars.push((format!("{l}/ffn/linear_0/bias"), vec![4 * d]));
            vars.push((format!("{l}/ffn/linear_1/weight"), vec![d, 4 * d]));
            vars.push((format!("{l}/ffn/linear_1/bias"), vec![d]));
            vars.push((format!("{l}/ffn/layer_norm/gamma"), vec![d]));
            vars.push((format!("{l}/ffn/layer_norm/beta"), vec![d]));
        }
        let refs: Vec<(&str, Vec<usize>)> =
            vars.iter().map(|(n, s)| (n.as_str(), s.clone())).collect();
        write_model(
            &refs,
            &[("decoder/projection/weight", "decoder/embeddings/weight")],
        )
    }

    #[test]
    fn fused_attention_is_split_into_candle_shapes() {
        let bytes = tiny_whisper();
        let model = parse(&bytes).unwrap();
        assert_eq!(model.spec, "WhisperSpec");
        assert!(
            model.variables.contains_key("decoder/projection/weight"),
            "alias resolved"
        );
        let map = whisper_tensor_map(&model).unwrap();
        let shape = |n: &str| {
            map.get(n)
                .unwrap_or_else(|| panic!("{n} not mapped"))
                .shape
                .clone()
        };
        for side in ["encoder", "decoder"] {
            for p in ["q_proj", "k_proj", "v_proj", "out_proj"] {
                assert_eq!(
                    shape(&format!("model.{side}.layers.0.self_attn.{p}.weight")),
                    vec![8, 8]
                );
            }
            assert!(!map.contains_key(&format!("model.{side}.layers.0.self_attn.k_proj.bias")));
            assert_eq!(
                shape(&format!("model.{side}.layers.0.self_attn.v_proj.bias")),
                vec![8]
            );
            assert_eq!(
                shape(&format!("model.{side}.layers.0.fc1.weight")),
                vec![32, 8]
            );
            assert_eq!(
                shape(&format!("model.{side}.layers.0.fc2.weight")),
                vec![8, 32]
            );
        }
        assert_eq!(
            shape("model.decoder.layers.0.encoder_attn.k_proj.weight"),
            vec![8, 8]
        );
        assert_eq!(
            shape("model.decoder.layers.0.encoder_attn.v_proj.bias"),
            vec![8]
        );
        assert_eq!(shape("model.encoder.conv1.weight"), vec![8, 3, 3]);
        assert_eq!(shape("model.decoder.embed_tokens.weight"), vec![20, 8]);
        // q, k, v take consecutive thirds of the fused matrix.
        let rows = |n: &str| map[n].rows;
        assert_eq!(
            rows("model.encoder.layers.0.self_attn.q_proj.weight"),
            Some((0, 8))
        );
        assert_eq!(
            rows("model.encoder.layers.0.self_attn.k_proj.weight"),
            Some((8, 16))
        );
        assert_eq!(
            rows("model.encoder.layers.0.self_attn.v_proj.weight"),
            Some((16, 24))
        );
        assert_eq!(
            rows("model.decoder.layers.0.encoder_attn.v_proj.weight"),
            Some((8, 16))
        );
        assert!(!map.contains_key("model.encoder.layers.1.fc1.weight"));
    }

    #[test]
    fn truncated_or_foreign_files_are_errors_not_panics() {
        let bytes = tiny_whisper();
        assert!(parse(&bytes[..bytes.len() / 2]).is_err());
        assert!(parse(&[1, 0, 0, 0]).is_err());
        assert!(parse(&[]).is_err());
        let not_whisper = write_model(&[("encoder/x", vec![2])], &[]);
        assert!(whisper_tensor_map(&parse(&not_whisper).unwrap()).is_err());
    }

    #[test]
    fn half_precision_converts_exactly() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x3555), 0.333_251_95);
        assert_eq!(f16_to_f32(0x0001), 5.960_464_5e-8);
        assert!(f16_to_f32(0x7c00).is_infinite());
    }

    #[test]
    fn row_ranges_read_the_right_slice() {
        let var = Ct2Variable {
            shape: vec![3, 2],
            dtype: Ct2Dtype::F32,
            offset: 0,
            len: 24,
        };
        let bytes: Vec<u8> = (0..6).flat_map(|i| (i as f32).to_le_bytes()).collect();
        assert_eq!(to_f32(&bytes, &var, Some((1, 2))).unwrap(), vec![2.0, 3.0]);
        assert_eq!(to_f32(&bytes, &var, None).unwrap().len(), 6);
    }
}
