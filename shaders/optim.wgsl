// Optimizer updates over flat buffers of parameters, gradients and state: one dispatch
// updates every parameter. PyTorch's formulas (torch.optim.SGD, Adam, AdamW).
//   (grad is first scaled by clip_factor() when MAX_NORM > 0)
//   sgd   g = grad + wd*p; buf = momentum*buf + g (buf starts at 0, no dampening);
//         g = nesterov ? g + momentum*buf : buf (when momentum != 0); p -= lr*g
//   adam  g = grad + wd*p (ADAMW: p *= 1 - lr*wd instead); m = b1*m + (1-b1)*g;
//         v = b2*v + (1-b2)*g^2; p -= (lr/bc1) * m / (sqrt(v)/sqrt(bc2) + eps)
// The grid is 2-D like elementwise.wgsl: i = gid.x + gid.y * num_workgroups.x * 256.

struct Params {
    u: vec4<u32>, // n, unused...
    f: vec4<f32>, // sgd: lr, momentum, wd, unused; adam: lr/bc1, 1/sqrt(bc2), wd (ADAMW: lr*wd), eps
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> param: array<f32>;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;
// Squared norm of all gradients (clipping), when MAX_NORM > 0.
@group(0) @binding(5) var<storage, read> gnorm2: array<f32>;
// The same four buffers four values at a time, for the `sgd4` and `adam4` forms (n % 4 == 0,
// views 16-byte aligned; p.u.x is then n / 4): the same arithmetic on each value, a quarter of
// the loads (under llvmpipe each load is a loop over the SIMD lanes). Each form binds only the
// set it uses.
@group(0) @binding(6) var<storage, read_write> param4: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read> grad4: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read_write> m4: array<vec4<f32>>;
@group(0) @binding(9) var<storage, read_write> v4: array<vec4<f32>>;

override NESTEROV: bool = false;
override HAS_MOMENTUM: bool = true;
override ADAMW: bool = false;
override BETA1: f32 = 0.9;
override BETA2: f32 = 0.999;
// Gradient clipping as torch.nn.utils.clip_grad_norm_: scale by min(1, MAX_NORM / (norm + 1e-6)).
override MAX_NORM: f32 = 0.0;

fn clip_factor() -> f32 {
    if MAX_NORM <= 0.0 { return 1.0; }
    return min(1.0, MAX_NORM / (sqrt(gnorm2[0]) + 1e-6));
}
const WG: u32 = 256u;

// The updates, written once over four values; the one-value forms use the first of four
// copies (the same operations on each value, so both forms agree bit for bit).
struct Update {
    x: vec4<f32>,
    m: vec4<f32>,
    v: vec4<f32>,
}

// SGD: new parameters and momentum buffer (v unused).
fn sgd_update(x: vec4<f32>, grad: vec4<f32>, buf: vec4<f32>) -> Update {
    let lr = p.f.x;
    let mom = p.f.y;
    let wd = p.f.z;
    var g = clip_factor() * grad + wd * x;
    var b = buf;
    if HAS_MOMENTUM {
        b = mom * buf + g;
        if NESTEROV { g = g + mom * b; } else { g = b; }
    }
    return Update(x - lr * g, b, vec4<f32>(0.0));
}

fn adam_update(param: vec4<f32>, grad: vec4<f32>, m: vec4<f32>, v: vec4<f32>) -> Update {
    let step_size = p.f.x;
    let inv_sqrt_bc2 = p.f.y;
    let wd = p.f.z;
    let eps = p.f.w;
    var x = param;
    var g = clip_factor() * grad;
    if ADAMW { x = x * (1.0 - wd); } else { g = g + wd * x; }
    let mi = BETA1 * m + (1.0 - BETA1) * g;
    let vi = BETA2 * v + (1.0 - BETA2) * g * g;
    return Update(x - step_size * mi / (sqrt(vi) * inv_sqrt_bc2 + eps), mi, vi);
}

@compute @workgroup_size(WG)
fn sgd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if i >= p.u.x { return; }
    var buf = 0.0;
    if HAS_MOMENTUM { buf = m[i]; }
    let u = sgd_update(vec4<f32>(param[i]), vec4<f32>(grad[i]), vec4<f32>(buf));
    if HAS_MOMENTUM { m[i] = u.m.x; }
    param[i] = u.x.x;
}

@compute @workgroup_size(WG)
fn adam(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if i >= p.u.x { return; }
    let u = adam_update(vec4<f32>(param[i]), vec4<f32>(grad[i]), vec4<f32>(m[i]), vec4<f32>(v[i]));
    m[i] = u.m.x;
    v[i] = u.v.x;
    param[i] = u.x.x;
}

@compute @workgroup_size(WG)
fn sgd4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if i >= p.u.x { return; }
    var buf = vec4<f32>(0.0);
    if HAS_MOMENTUM { buf = m4[i]; }
    let u = sgd_update(param4[i], grad4[i], buf);
    if HAS_MOMENTUM { m4[i] = u.m; }
    param4[i] = u.x;
}

@compute @workgroup_size(WG)
fn adam4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if i >= p.u.x { return; }
    let u = adam_update(param4[i], grad4[i], m4[i], v4[i]);
    m4[i] = u.m;
    v4[i] = u.v;
    param4[i] = u.x;
}
