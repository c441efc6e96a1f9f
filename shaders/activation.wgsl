// Activations, shared by matmul.wgsl (its epilogue) and elementwise.wgsl.
// Hydra prepends this file to those shaders; it also validates on its own.
// Codes: 0 identity, 1 relu, 2 leaky_relu, 3 gelu (tanh form), 4 sigmoid, 5 tanh,
// 6 smooth step of width gamma (passed as `slope`): DSelect-k's.

fn stable_tanh(x: f32) -> f32 {
    let e = exp(-2.0 * abs(x));
    let t = (1.0 - e) / (1.0 + e);
    return select(-t, t, x >= 0.0);
}

fn stable_sigmoid(x: f32) -> f32 {
    let e = exp(-abs(x));
    let r = 1.0 / (1.0 + e);
    return select(e * r, r, x >= 0.0);
}

// 0 below -g/2, 1 above g/2, a cubic between whose slope is 0 at both ends.
fn smooth_step(x: f32, g: f32) -> f32 {
    if x <= -0.5 * g { return 0.0; }
    if x >= 0.5 * g { return 1.0; }
    return -2.0 * x * x * x / (g * g * g) + 1.5 * x / g + 0.5;
}

fn smooth_step_grad(x: f32, g: f32) -> f32 {
    if x <= -0.5 * g || x >= 0.5 * g { return 0.0; }
    return -6.0 * x * x / (g * g * g) + 1.5 / g;
}

const GELU_C: f32 = 0.7978845608028654; // sqrt(2 / pi)
const GELU_A: f32 = 0.044715;

fn act_apply(kind: u32, x: f32, slope: f32) -> f32 {
    switch kind {
        case 1u: { return max(x, 0.0); }
        case 2u: { return select(slope * x, x, x > 0.0); }
        case 3u: { return 0.5 * x * (1.0 + stable_tanh(GELU_C * (x + GELU_A * x * x * x))); }
        case 4u: { return stable_sigmoid(x); }
        case 5u: { return stable_tanh(x); }
        case 6u: { return smooth_step(x, slope); }
        default: { return x; }
    }
}

// d act / d x, from the input x.
fn act_grad_from_input(kind: u32, x: f32, slope: f32) -> f32 {
    switch kind {
        case 1u: { return select(0.0, 1.0, x > 0.0); }
        case 2u: { return select(slope, 1.0, x > 0.0); }
        case 3u: {
            let t = stable_tanh(GELU_C * (x + GELU_A * x * x * x));
            return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * GELU_C * (1.0 + 3.0 * GELU_A * x * x);
        }
        case 4u: { let s = stable_sigmoid(x); return s * (1.0 - s); }
        case 5u: { let t = stable_tanh(x); return 1.0 - t * t; }
        case 6u: { return smooth_step_grad(x, slope); }
        default: { return 1.0; }
    }
}

// d act / d x, from the output y = act(x); valid for every code but gelu (slope >= 0).
fn act_grad_from_output(kind: u32, y: f32, slope: f32) -> f32 {
    switch kind {
        case 1u: { return select(0.0, 1.0, y > 0.0); }
        case 2u: { return select(slope, 1.0, y > 0.0); }
        case 4u: { return y * (1.0 - y); }
        case 5u: { return 1.0 - y * y; }
        default: { return 1.0; }
    }
}

// The same, four values at a time (one switch for four: a quarter of the code to compile
// where a kernel applies them per output).
fn stable_tanh4(x: vec4<f32>) -> vec4<f32> {
    let e = exp(-2.0 * abs(x));
    let t = (1.0 - e) / (1.0 + e);
    return select(-t, t, x >= vec4<f32>(0.0));
}

fn stable_sigmoid4(x: vec4<f32>) -> vec4<f32> {
    let e = exp(-abs(x));
    let r = 1.0 / (1.0 + e);
    return select(e * r, r, x >= vec4<f32>(0.0));
}

fn act_apply4(kind: u32, x: vec4<f32>, slope: f32) -> vec4<f32> {
    switch kind {
        case 1u: { return max(x, vec4<f32>(0.0)); }
        case 2u: { return select(slope * x, x, x > vec4<f32>(0.0)); }
        case 3u: { return 0.5 * x * (1.0 + stable_tanh4(GELU_C * (x + GELU_A * x * x * x))); }
        case 4u: { return stable_sigmoid4(x); }
        case 5u: { return stable_tanh4(x); }
        case 6u: {
            return vec4<f32>(smooth_step(x.x, slope), smooth_step(x.y, slope), smooth_step(x.z, slope), smooth_step(x.w, slope));
        }
        default: { return x; }
    }
}

fn act_grad_from_input4(kind: u32, x: vec4<f32>, slope: f32) -> vec4<f32> {
    let one = vec4<f32>(1.0);
    switch kind {
        case 1u: { return select(vec4<f32>(0.0), one, x > vec4<f32>(0.0)); }
        case 2u: { return select(vec4<f32>(slope), one, x > vec4<f32>(0.0)); }
        case 3u: {
            let t = stable_tanh4(GELU_C * (x + GELU_A * x * x * x));
            return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * GELU_C * (1.0 + 3.0 * GELU_A * x * x);
        }
        case 4u: { let s = stable_sigmoid4(x); return s * (1.0 - s); }
        case 5u: { let t = stable_tanh4(x); return 1.0 - t * t; }
        case 6u: {
            return vec4<f32>(
                smooth_step_grad(x.x, slope), smooth_step_grad(x.y, slope),
                smooth_step_grad(x.z, slope), smooth_step_grad(x.w, slope));
        }
        default: { return one; }
    }
}

fn act_grad_from_output4(kind: u32, y: vec4<f32>, slope: f32) -> vec4<f32> {
    let one = vec4<f32>(1.0);
    switch kind {
        case 1u: { return select(vec4<f32>(0.0), one, y > vec4<f32>(0.0)); }
        case 2u: { return select(vec4<f32>(slope), one, y > vec4<f32>(0.0)); }
        case 4u: { return y * (1.0 - y); }
        case 5u: { return 1.0 - y * y; }
        default: { return one; }
    }
}
