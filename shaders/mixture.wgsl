// Gates and gated mixtures of experts (MMoE, OMoE). One invocation per output value or row,
// no workgroup memory: gates have few columns. The grid is 2-D so the count may exceed
// 65535 * 256: i = gid.x + gid.y * (num_workgroups.x * 256).
//   softmax_rows           b[r, :] = softmax(a[r, :])                    one invocation per row; u.x = rows, u.y = cols
//   softmax_rows_backward  c[r, :] (+)= b ⊙ (a − Σ a ⊙ b)  a = dy, b = y  one invocation per row
//   mix                    c[r, d] = Σ_e a[r, e] · b[r, e·D + d]          a = gate [R, E], b = blocks; u = (R·D, E, D)
//   mix_grad_gate          c[r, e] (+)= Σ_d a[r, d] · b[r, e·D + d]       a = dy [R, D], b = blocks; u = (R·E, E, D)
//   mix_grad_x             c[r, e·D + d] (+)= b[r, e] · a[r, d]           a = dy, b = gate; u = (R·E·D, E, D)
//   stitch                 c[r, t·D + d] (+)= Σ_s α[t, s] · b[r, s·D + d]  a = α [T, T]; u = (R·T·D, T, D); TRANSPOSE: α[s, t]
//   stitch_grad_alpha      c[t, s] (+)= Σ_{r,d} a[r, t·D + d] · b[r, s·D + d]  a = dy, b = x; u = (T·T, T, D, R)
//   encode                 b[r, i·E + j] = Π_q (bit_q(j) ? a : 1 − a)[r, i·m + q]   DSelect-k; u = (R·k·E, E, m)
//   encode_grad            c[r, i·m + q] (+)= Σ_j b[r, i·E + j] · ±Π_{q'≠q}(…)    a = bits, b = dy; u = (R·k·m, E, m)
// Softmax subtracts each row's maximum first: finite for logits of ±100 and beyond.

struct Params {
    u: vec4<u32>,
    f: vec4<f32>,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> a: array<f32>;
@group(0) @binding(2) var<storage, read_write> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> c: array<f32>;

override ACCUMULATE: bool = false;
override TRANSPOSE: bool = false;

const WG: u32 = 256u;

fn index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * WG;
}

fn store(i: u32, v: f32) {
    if ACCUMULATE { c[i] = c[i] + v; } else { c[i] = v; }
}

@compute @workgroup_size(WG)
fn softmax_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = index(gid, nwg);
    if r >= p.u.x { return; }
    let n = p.u.y;
    let o = r * n;
    var m = a[o];
    for (var j = 1u; j < n; j++) { m = max(m, a[o + j]); }
    var s = 0.0;
    for (var j = 0u; j < n; j++) {
        let e = exp(a[o + j] - m);
        b[o + j] = e;
        s += e;
    }
    for (var j = 0u; j < n; j++) { b[o + j] = b[o + j] / s; }
}

@compute @workgroup_size(WG)
fn softmax_rows_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = index(gid, nwg);
    if r >= p.u.x { return; }
    let n = p.u.y;
    let o = r * n;
    var dot = 0.0;
    for (var j = 0u; j < n; j++) { dot += a[o + j] * b[o + j]; }
    for (var j = 0u; j < n; j++) { store(o + j, b[o + j] * (a[o + j] - dot)); }
}

@compute @workgroup_size(WG)
fn mix(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if i >= p.u.x { return; }
    let e_n = p.u.y;
    let d_n = p.u.z;
    let r = i / d_n;
    let d = i % d_n;
    var s = 0.0;
    for (var e = 0u; e < e_n; e++) { s += a[r * e_n + e] * b[(r * e_n + e) * d_n + d]; }
    c[i] = s;
}

@compute @workgroup_size(WG)
fn mix_grad_gate(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if i >= p.u.x { return; }
    let e_n = p.u.y;
    let d_n = p.u.z;
    let r = i / e_n;
    let e = i % e_n;
    var s = 0.0;
    for (var d = 0u; d < d_n; d++) { s += a[r * d_n + d] * b[(r * e_n + e) * d_n + d]; }
    store(i, s);
}

@compute @workgroup_size(WG)
fn mix_grad_x(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if i >= p.u.x { return; }
    let e_n = p.u.y;
    let d_n = p.u.z;
    let re = i / d_n;
    let d = i % d_n;
    let r = re / e_n;
    store(i, b[re] * a[r * d_n + d]);
}

@compute @workgroup_size(WG)
fn stitch(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if i >= p.u.x { return; }
    let t_n = p.u.y;
    let d_n = p.u.z;
    let rt = i / d_n;
    let d = i % d_n;
    let r = rt / t_n;
    let t = rt % t_n;
    var s = 0.0;
    for (var k = 0u; k < t_n; k++) {
        var w: f32;
        if TRANSPOSE { w = a[k * t_n + t]; } else { w = a[t * t_n + k]; }
        s += w * b[(r * t_n + k) * d_n + d];
    }
    store(i, s);
}

@compute @workgroup_size(WG)
fn stitch_grad_alpha(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if i >= p.u.x { return; }
    let t_n = p.u.y;
    let d_n = p.u.z;
    let t = i / t_n;
    let k = i % t_n;
    var s = 0.0;
    for (var r = 0u; r < p.u.w; r++) {
        for (var d = 0u; d < d_n; d++) {
            s += a[(r * t_n + t) * d_n + d] * b[(r * t_n + k) * d_n + d];
        }
    }
    store(i, s);
}

fn bit_factor(bits: u32, j: u32, q: u32) -> f32 {
    let v = a[bits + q];
    return select(1.0 - v, v, ((j >> q) & 1u) == 1u);
}

@compute @workgroup_size(WG)
fn encode(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if i >= p.u.x { return; }
    let e_n = p.u.y;
    let m = p.u.z;
    let sel = i / e_n; // r·k + i
    let j = i % e_n;
    var prod = 1.0;
    for (var q = 0u; q < m; q++) { prod *= bit_factor(sel * m, j, q); }
    b[i] = prod;
}

@compute @workgroup_size(WG)
fn encode_grad(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if i >= p.u.x { return; }
    let e_n = p.u.y;
    let m = p.u.z;
    let sel = i / m;
    let q = i % m;
    var s = 0.0;
    for (var j = 0u; j < e_n; j++) {
        var rest = 1.0;
        for (var b2 = 0u; b2 < m; b2++) {
            if b2 != q { rest *= bit_factor(sel * m, j, b2); }
        }
        let g = b[sel * e_n + j] * rest;
        s += select(-g, g, ((j >> q) & 1u) == 1u);
    }
    store(i, s);
}
