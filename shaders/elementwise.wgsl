// Elementwise kernels over n = p.u.x values. The grid is 2-D so n may exceed 65535 * 256:
// i = gid.x + gid.y * (num_workgroups.x * 256). Requires activation.wgsl (prepended by Hydra).
//   fill           x = alpha
//   scale          x = alpha * x
//   axpy           y = y + alpha * x
//   add            z = x + y
//   mul            z (+)= x * y            (an elementwise product, or its gradient)
//   act_forward    y = act(x)
//   act_backward   z (+)= x * act'(y)      x = upstream gradient, y = saved input or output
//   transpose      y = xᵀ                  x is [R, C] (p.u.y = R, p.u.z = C), y is [C, R]
//   copy_columns   y[r, oy + j] = x[r, ox + j] (+ z[j])   a block of C = p.u.y columns from one
//                  matrix to another: x's rows p.u.z apart, y's p.u.w apart; the column offsets
//                  ox, oy come as the bits of p.f.x and p.f.y

struct Params {
    u: vec4<u32>, // n, unused...
    f: vec4<f32>, // alpha, activation slope, unused...
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> z: array<f32>;

override ACT: u32 = 0u;
override FROM_OUTPUT: bool = false;
override ACCUMULATE: bool = false;
override HAS_BIAS: bool = false;

const WG: u32 = 256u;

fn index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * WG;
}

@compute @workgroup_size(WG)
fn fill(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if i < p.u.x { x[i] = p.f.x; }
}

@compute @workgroup_size(WG)
fn scale(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if i < p.u.x { x[i] = p.f.x * x[i]; }
}

@compute @workgroup_size(WG)
fn axpy(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if i < p.u.x { y[i] = y[i] + p.f.x * x[i]; }
}

@compute @workgroup_size(WG)
fn add(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if i < p.u.x { z[i] = x[i] + y[i]; }
}

@compute @workgroup_size(WG)
fn mul(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if i < p.u.x {
        var r = x[i] * y[i];
        if ACCUMULATE { r += z[i]; }
        z[i] = r;
    }
}

@compute @workgroup_size(WG)
fn act_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if i < p.u.x { y[i] = act_apply(ACT, x[i], p.f.y); }
}

@compute @workgroup_size(WG)
fn act_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if i < p.u.x {
        var d: f32;
        if FROM_OUTPUT { d = act_grad_from_output(ACT, y[i], p.f.y); } else { d = act_grad_from_input(ACT, y[i], p.f.y); }
        var r = x[i] * d;
        if ACCUMULATE { r += z[i]; }
        z[i] = r;
    }
}

@compute @workgroup_size(WG)
fn transpose(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if i < p.u.x {
        let r = i / p.u.z;
        let c = i % p.u.z;
        y[c * p.u.y + r] = x[i];
    }
}

@compute @workgroup_size(WG)
fn copy_columns(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if i < p.u.x {
        let r = i / p.u.y;
        let j = i % p.u.y;
        var v = x[r * p.u.z + bitcast<u32>(p.f.x) + j];
        if HAS_BIAS { v += z[j]; }
        y[r * p.u.w + bitcast<u32>(p.f.y) + j] = v;
    }
}
