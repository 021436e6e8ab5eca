//! Loading weights saved from the report's PyTorch models (state-dict names and layouts).
//!
//! PyTorch keeps nn.Bilinear as (out, d_metric, d_text) and nn.Linear as (out, in); foldsweep
//! keeps (d_metric, d_text, out) and (in, out), so every matrix is re-laid-out once here.
//! The heteroscedastic model's two 1-output heads become the two columns of one head.

use std::collections::HashMap;

use burn::module::Param;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

use crate::config::ModelKind;
use crate::model::{ModelSpec, PairModel};

/// A tensor as PyTorch stores it: shape and row-major values.
#[derive(Debug, Clone, PartialEq)]
pub struct TorchTensor {
    pub shape: Vec<usize>,
    /// f64 so that a float64 model loads without rounding; f32 backends convert on load.
    pub values: Vec<f64>,
}

pub type StateDict = HashMap<String, TorchTensor>;

/// Builds a model of `spec` with the weights of a PyTorch state dict of the report's model.
pub fn from_state_dict<B: Backend>(
    spec: &ModelSpec,
    state: &StateDict,
    device: &B::Device,
) -> anyhow::Result<PairModel<B>> {
    anyhow::ensure!(spec.bilinear_rank == 0, "PyTorch state dicts hold the full bilinear layer");
    let get = |name: &str, shape: &[usize]| -> anyhow::Result<Tensor<B, 2>> {
        let t = state.get(name).ok_or_else(|| anyhow::anyhow!("missing parameter {name}"))?;
        anyhow::ensure!(
            t.shape == shape,
            "parameter {name} has shape {:?}, expected {shape:?}",
            t.shape
        );
        let rows = shape[0];
        let cols = t.values.len() / rows.max(1);
        let data = TensorData::new(t.values.clone(), [rows, cols]).convert::<B::FloatElem>();
        Ok(Tensor::from_data(data, device))
    };
    let vector = |name: &str, len: usize| -> anyhow::Result<Tensor<B, 1>> {
        Ok(get(name, &[len])?.reshape([len]))
    };
    // torch (out, in) -> ours (in, out)
    let linear_weight = |name: &str, out: usize, inp: usize| -> anyhow::Result<Tensor<B, 2>> {
        Ok(get(name, &[out, inp])?.transpose())
    };

    let mut model = spec.init::<B>(device);
    let (dm, dt, db) = (spec.d_metric, spec.d_text, spec.d_bilinear);
    let bilinear = model.bilinear.as_mut().expect("full bilinear layer");
    let torch_bilinear = get("bilinear.weight", &[db, dm, dt])?.reshape([db, dm * dt]).transpose();
    bilinear.weight = Param::from_tensor(torch_bilinear.reshape([dm, dt * db]));
    bilinear.bias = Param::from_tensor(vector("bilinear.bias", db)?);

    let mut width = dm + dt + db;
    for (i, &hidden) in spec.hidden_dims.iter().enumerate() {
        let fc = &mut model.fc_layers[i];
        fc.weight =
            Param::from_tensor(linear_weight(&format!("fc_layers.{i}.weight"), hidden, width)?);
        fc.bias = Some(Param::from_tensor(vector(&format!("fc_layers.{i}.bias"), hidden)?));
        let norm = &mut model.layer_norms[i];
        norm.gamma = Param::from_tensor(vector(&format!("layer_norms.{i}.weight"), hidden)?);
        norm.beta = Some(Param::from_tensor(vector(&format!("layer_norms.{i}.bias"), hidden)?));
        width = hidden;
    }
    let (head_weight, head_bias) = match spec.kind {
        ModelKind::Standard | ModelKind::Ordinal => {
            let classes = spec.head_outputs();
            (linear_weight("output.weight", classes, width)?, vector("output.bias", classes)?)
        }
        ModelKind::Heteroscedastic => (
            Tensor::cat(
                vec![
                    linear_weight("mean_head.weight", 1, width)?,
                    linear_weight("logvar_head.weight", 1, width)?,
                ],
                1,
            ),
            Tensor::cat(vec![vector("mean_head.bias", 1)?, vector("logvar_head.bias", 1)?], 0),
        ),
        ModelKind::Gbdt => unreachable!(
            "gbdt configs never build a neural model (job dispatches them to the trees)"
        ),
    };
    model.head.weight = Param::from_tensor(head_weight);
    model.head.bias = Some(Param::from_tensor(head_bias));
    Ok(model)
}

/// The inverse of [`from_state_dict`]: the model's weights under PyTorch's names and layouts.
pub fn to_state_dict<B: Backend>(spec: &ModelSpec, model: &PairModel<B>) -> StateDict {
    fn entry<B: Backend, const D: usize>(tensor: Tensor<B, D>) -> TorchTensor {
        let shape = tensor.dims().to_vec();
        TorchTensor {
            shape,
            values: tensor.into_data().convert::<f64>().into_vec().expect("f64 data"),
        }
    }
    let mut state = StateDict::new();
    let (dm, dt, db) = (spec.d_metric, spec.d_text, spec.d_bilinear);
    if let Some(bilinear) = &model.bilinear {
        let w = bilinear.weight.val().reshape([dm * dt, db]).transpose().reshape([db, dm, dt]);
        state.insert("bilinear.weight".into(), entry(w));
        state.insert("bilinear.bias".into(), entry(bilinear.bias.val()));
    }
    for (i, (fc, norm)) in model.fc_layers.iter().zip(&model.layer_norms).enumerate() {
        state.insert(format!("fc_layers.{i}.weight"), entry(fc.weight.val().transpose()));
        if let Some(bias) = &fc.bias {
            state.insert(format!("fc_layers.{i}.bias"), entry(bias.val()));
        }
        state.insert(format!("layer_norms.{i}.weight"), entry(norm.gamma.val()));
        if let Some(beta) = &norm.beta {
            state.insert(format!("layer_norms.{i}.bias"), entry(beta.val()));
        }
    }
    let weight = model.head.weight.val().transpose();
    let bias = model.head.bias.as_ref().map(|b| b.val());
    match spec.kind {
        ModelKind::Standard | ModelKind::Ordinal => {
            state.insert("output.weight".into(), entry(weight));
            if let Some(bias) = bias {
                state.insert("output.bias".into(), entry(bias));
            }
        }
        ModelKind::Heteroscedastic => {
            for (row, name) in ["mean_head", "logvar_head"].into_iter().enumerate() {
                state.insert(format!("{name}.weight"), entry(weight.clone().narrow(0, row, 1)));
                if let Some(bias) = &bias {
                    state.insert(format!("{name}.bias"), entry(bias.clone().narrow(0, row, 1)));
                }
            }
        }
        ModelKind::Gbdt => unreachable!(
            "gbdt configs never build a neural model (job dispatches them to the trees)"
        ),
    }
    state
}
