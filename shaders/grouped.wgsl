// G products side by side, one dispatch: for g < G,
//   C_g[M,N] = act(op(A_g)·op(B_g) [+ C_g] [+ bias[g·N .. g·N + N]])
// the deeper layers of G experts (forward) and their gradients. op(A_g) is [M,K] (A_g stored
// [K,M] when TRANS_A), op(B_g) [K,N] (B_g stored [N,K] when TRANS_B). Each stored matrix is
// either one of G blocks of columns side by side (a [rows, G·cols] matrix, the layout of
// activations) or one of G matrices stacked (a [G·rows, cols] buffer, the layout of the
// experts' weights): *_STACKED says which.
// Each invocation computes a 4x4 block of one group's C (workgroup id z = group). With VEC_A
// and VEC_B it takes four k at a time (four-float loads, summed four products at a time),
// else one. Requires activation.wgsl (prepended by Hydra).

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
// A and B again, four floats at a time (VEC_A, VEC_B): along k where op(A)'s rows (A not
// transposed) or op(B)'s columns (B transposed) are contiguous, else along m or n. Only where
// every such run starts at a multiple of four; a dummy otherwise.
@group(0) @binding(5) var<storage, read> a4: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read> b4: array<vec4<f32>>;

override TRANS_A: bool = false;
override TRANS_B: bool = false;
override A_STACKED: bool = false;
override B_STACKED: bool = true;
override C_STACKED: bool = false;
override HAS_BIAS: bool = false;
override ACCUMULATE: bool = false;
override ACT: u32 = 0u;
override VEC_A: bool = false;
override VEC_B: bool = false;

// Element (r, col) of group g of a stored [rows, cols] matrix.
fn at(stacked: bool, groups: u32, g: u32, rows: u32, cols: u32, r: u32, col: u32) -> u32 {
    if stacked { return (g * rows + r) * cols + col; }
    return r * groups * cols + g * cols + col;
}

// How far apart two consecutive rows of a stored matrix of `cols` columns are.
fn row_step(stacked: bool, groups: u32, cols: u32) -> u32 {
    if stacked { return cols; }
    return groups * cols;
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
    // Where op(A)[m, 0] and op(B)[0, n] are, and how far each moves per step of k.
    var a0: vec4<u32>;
    var b0: vec4<u32>;
    var a_step: u32;
    var b_step: u32;
    if TRANS_A {
        a0 = vec4<u32>(at(A_STACKED, G, g, K, M, 0u, 0u)) + ms;
        a_step = row_step(A_STACKED, G, M);
    } else {
        a0 = vec4<u32>(at(A_STACKED, G, g, M, K, 0u, 0u)) + ms * row_step(A_STACKED, G, K);
        a_step = 1u;
    }
    if TRANS_B {
        b0 = vec4<u32>(at(B_STACKED, G, g, N, K, 0u, 0u)) + ns * row_step(B_STACKED, G, K);
        b_step = 1u;
    } else {
        b0 = vec4<u32>(at(B_STACKED, G, g, K, N, 0u, 0u)) + ns;
        b_step = row_step(B_STACKED, G, N);
    }
    var acc0 = vec4<f32>();
    var acc1 = vec4<f32>();
    var acc2 = vec4<f32>();
    var acc3 = vec4<f32>();
    var k = 0u;
    if VEC_A && VEC_B {
        for (; k + 4u <= K; k += 4u) {
            // at[i] = op(A)[m_i, k..k+4], bt[j] = op(B)[k..k+4, n_j].
            var at: mat4x4<f32>;
            var bt: mat4x4<f32>;
            if TRANS_A {
                let r = (a0.x + k * a_step) / 4u;
                let s = a_step / 4u;
                at = transpose(mat4x4<f32>(a4[r], a4[r + s], a4[r + 2u * s], a4[r + 3u * s]));
            } else {
                at = mat4x4<f32>(a4[(a0.x + k) / 4u], a4[(a0.y + k) / 4u], a4[(a0.z + k) / 4u], a4[(a0.w + k) / 4u]);
            }
            if TRANS_B {
                bt = mat4x4<f32>(b4[(b0.x + k) / 4u], b4[(b0.y + k) / 4u], b4[(b0.z + k) / 4u], b4[(b0.w + k) / 4u]);
            } else {
                let r = (b0.x + k * b_step) / 4u;
                let s = b_step / 4u;
                bt = transpose(mat4x4<f32>(b4[r], b4[r + s], b4[r + 2u * s], b4[r + 3u * s]));
            }
            // transpose(bt) * at[i] = (dot(at[i], bt[j]))_j: row i of the block.
            let tb = transpose(bt);
            acc0 = acc0 + tb * at[0];
            acc1 = acc1 + tb * at[1];
            acc2 = acc2 + tb * at[2];
            acc3 = acc3 + tb * at[3];
        }
    }
    var ai = a0 + vec4<u32>(k * a_step);
    var bi = b0 + vec4<u32>(k * b_step);
    for (; k < K; k++) {
        let av = vec4<f32>(a[ai.x], a[ai.y], a[ai.z], a[ai.w]);
        let bv = vec4<f32>(b[bi.x], b[bi.y], b[bi.z], b[bi.w]);
        acc0 = acc0 + av.x * bv;
        acc1 = acc1 + av.y * bv;
        acc2 = acc2 + av.z * bv;
        acc3 = acc3 + av.w * bv;
        ai += vec4<u32>(a_step);
        bi += vec4<u32>(b_step);
    }
    let acc = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
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
