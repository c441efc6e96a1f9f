// A prelude (no entry points), prepended by Hydra to the shaders that reduce within a
// workgroup of 256 invocations (loss.wgsl, weighting.wgsl): a tree sum through workgroup
// memory, the same order of additions for every caller.

const RED_N: u32 = 256u;
var<workgroup> red: array<f32, 256>;

// The sum of `v` over the workgroup's RED_N invocations (`t`: the local index); every
// invocation gets it.
fn workgroup_sum(t: u32, v: f32) -> f32 {
    red[t] = v;
    workgroupBarrier();
    for (var s = RED_N / 2u; s > 0u; s >>= 1u) {
        if t < s { red[t] += red[t + s]; }
        workgroupBarrier();
    }
    let r = red[0];
    workgroupBarrier();
    return r;
}
