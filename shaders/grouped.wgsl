// G products side by side, one dispatch: for g < G,
//   C_g[M,N] = act(op(A_g)·op(B_g) [+ C_g] [+ bias[g·N .. g·N + N]])
// the deeper layers of G experts (forward) and their gradients. op(A_g) is [M,K] (A_g stored
// [K,M] when TRANS_A), op(B_g) [K,N] (B_g stored [N,K] when TRANS_B). Each stored matrix is
// either one of G blocks of columns side by side (a [rows, G·cols] matrix, the layout of
// activations) or one of G matrices stacked (a [G·rows, cols] buffer, the layout of the
// experts' weights): *_STACKED says which.
// Each invocation computes a 4x4 block of one group's C (workgroup id z = group), summing over
// k in order, one multiply-add at a time. Requires activation.wgsl (prepended by Hydra).

struct Params {
    u: vec4<u32>, // M, N, K, G
    f: vec4<f32>, // activation slope, unused...
}

// A storage buffer, as in matmul.wgsl: lavapipe recompiles shaders whose loops a uniform
// value steers.
@group(0) @binding(0) var<storage, read> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

override TRANS_A: bool = false;
override TRANS_B: bool = false;
override A_STACKED: bool = false;
override B_STACKED: bool = true;
override C_STACKED: bool = false;
override HAS_BIAS: bool = false;
override ACCUMULATE: bool = false;
override ACT: u32 = 0u;

// Element (r, col) of group g of a stored [rows, cols] matrix.
fn at(stacked: bool, groups: u32, g: u32, rows: u32, cols: u32, r: u32, col: u32) -> u32 {
    if stacked { return (g * rows + r) * cols + col; }
    return r * groups * cols + g * cols + col;
}

@compute @workgroup_size(8, 8, 1)
fn grouped(@builtin(global_invocation_id) gid: vec3<u32>) {
    let M = p.u.x;
    let N = p.u.y;
    let K = p.u.z;
    let G = p.u.w;
    let slope = p.f.x;
    let g = gid.z;
    let m0 = gid.y * 4u;
    let n0 = gid.x * 4u;
    if m0 >= M || n0 >= N || g >= G { return; }
    // Rows and columns past the edge read row M-1 / column N-1 again and are never stored.
    let ms = min(vec4<u32>(m0, m0 + 1u, m0 + 2u, m0 + 3u), vec4<u32>(M - 1u));
    let ns = min(vec4<u32>(n0, n0 + 1u, n0 + 2u, n0 + 3u), vec4<u32>(N - 1u));
    var acc: array<vec4<f32>, 4>;
    for (var k = 0u; k < K; k++) {
        var av: vec4<f32>;
        var bv: vec4<f32>;
        for (var i = 0u; i < 4u; i++) {
            if TRANS_A {
                av[i] = a[at(A_STACKED, G, g, K, M, k, ms[i])];
            } else {
                av[i] = a[at(A_STACKED, G, g, M, K, ms[i], k)];
            }
            if TRANS_B {
                bv[i] = b[at(B_STACKED, G, g, N, K, ns[i], k)];
            } else {
                bv[i] = b[at(B_STACKED, G, g, K, N, k, ns[i])];
            }
        }
        for (var i = 0u; i < 4u; i++) {
            acc[i] = acc[i] + av[i] * bv;
        }
    }
    for (var i = 0u; i < 4u; i++) {
        let m = m0 + i;
        if m >= M { break; }
        for (var j = 0u; j < 4u; j++) {
            let n = n0 + j;
            if n >= N { break; }
            let idx = at(C_STACKED, G, g, M, N, m, n);
            var r = acc[i][j];
            if ACCUMULATE { r += c[idx]; }
            if HAS_BIAS { r += bias[g * N + n]; }
            c[idx] = act_apply(ACT, r, slope);
        }
    }
}
