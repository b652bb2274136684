//! A one-pass PReLU for tract: SFace's 27 PReLU layers, which tract otherwise runs as three generic ops.
//!
//! tract-onnx expands ONNX `PRelu` into `x > 0` (a boolean tensor), `x * alpha` and a select: three passes over
//! 5 million activations per face, with slow generic kernels. Profiled, that was about half of SFace's time.
//! This module registers its own expansion for `PRelu` when alpha is a per-channel constant (as in SFace): one
//! in-place pass multiplying the negative values of each channel by its alpha. The ONNX file is not modified; only
//! the in-memory graph tract builds from it. Parity with ONNX Runtime is tested (`tests_engine`).

use tract_onnx::model::ParsingContext;
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;

/// Registers the one-pass PReLU with an ONNX loader.
pub fn register(onnx: &mut tract_onnx::Onnx) {
    onnx.op_register.insert("PRelu", build);
}

fn build(_: &ParsingContext, _: &NodeProto) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    Ok((expand(PreluExpansion), vec![]))
}

/// The ONNX-level op: `PRelu(x, alpha)`.
#[derive(Debug, Clone, Hash, PartialEq, Eq)]
struct PreluExpansion;

impl Expansion for PreluExpansion {
    fn name(&self) -> StaticName {
        "PreluPerChannel".into()
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        check_input_arity(inputs, 2)?;
        check_output_arity(outputs, 1)?;
        s.equals(&inputs[0].datum_type, &outputs[0].datum_type)?;
        s.equals(&inputs[0].shape, &outputs[0].shape)?;
        Ok(())
    }

    fn wire(
        &self,
        name: &str,
        model: &mut TypedModel,
        inputs: &[OutletId],
    ) -> TractResult<TVec<OutletId>> {
        let (x, alpha) = (inputs[0], inputs[1]);
        let fact = model.outlet_fact(x)?.clone();
        let channels = fact.shape.get(1).and_then(|d| d.to_usize().ok());
        let alpha = model.outlet_fact(alpha)?.konst.clone();
        let (Some(channels), Some(alpha)) = (channels, alpha) else {
            bail!("{name}: PRelu needs a constant alpha and a known channel count");
        };
        let alpha = alpha.cast_to::<f32>()?;
        let values = alpha.try_as_plain_ram()?.as_slice::<f32>()?.to_vec();
        if fact.datum_type != f32::datum_type() || fact.rank() < 2 || values.len() != channels {
            bail!("{name}: PRelu supported for f32 [N, C, ...] inputs with one alpha per channel");
        }
        let op = ChannelPrelu {
            alpha_bits: values.iter().map(|v| v.to_bits()).collect(),
        };
        model.wire_node(name, op, &[x])
    }
}

/// The typed op: negative values of channel `c` (axis 1) times `alpha[c]`, in place.
#[derive(Debug, Clone, Hash, PartialEq, Eq)]
struct ChannelPrelu {
    /// Alpha per channel, as `f32` bits (so the op can be `Eq`, as tract requires).
    alpha_bits: Vec<u32>,
}

impl Op for ChannelPrelu {
    fn name(&self) -> StaticName {
        "ChannelPrelu".into()
    }

    op_as_typed_op!();
}

impl EvalOp for ChannelPrelu {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let mut x = input.into_tensor();
        let shape = x.shape().to_vec();
        let channels = self.alpha_bits.len();
        if shape.len() < 2 || shape[1] != channels {
            bail!(
                "ChannelPrelu: input shape {shape:?} does not have {channels} channels on axis 1"
            );
        }
        let plane: usize = shape[2..].iter().product();
        let alpha: Vec<f32> = self.alpha_bits.iter().map(|b| f32::from_bits(*b)).collect();
        let mut view = x.try_as_plain_ram_mut()?;
        let data = view.as_slice_mut::<f32>()?;
        if plane > 0 {
            for (i, chunk) in data.chunks_exact_mut(plane).enumerate() {
                let a = alpha[i % channels];
                for v in chunk {
                    // Branch-free so that it vectorises: v if v >= 0, else a * v.
                    *v *= if *v < 0.0 { a } else { 1.0 };
                }
            }
        }
        Ok(tvec!(x.into_tvalue()))
    }
}

impl TypedOp for ChannelPrelu {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(inputs[0].without_value()))
    }

    as_op!();
}
