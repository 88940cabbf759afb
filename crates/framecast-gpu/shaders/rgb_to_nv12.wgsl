// RGB(A) -> NV12 in one compute pass.
//
// Each invocation converts a block of 4 columns x 2 rows: it writes two u32 words of luma (one
// per row, four samples each, little-endian byte order) and one u32 of interleaved chroma
// (Cb0 Cr0 Cb1 Cr1) for the block's two 2x2 chroma sites. Reads outside the picture clamp to the
// last column/row, which is the edge replication the CPU path uses for odd sizes.
//
// Chroma is the 2x2 box average of the four pixels' RGB, converted once (as framecast-core's
// reference and SIMD paths do). Coefficients come from the uniform, computed on the CPU from
// the ColorSpace, so every matrix and range uses this one kernel.

struct Params {
    // Display size of the source picture.
    width: u32,
    height: u32,
    // u32 words per output row (padded width / 4).
    words_per_row: u32,
    // Coded (even) height.
    coded_height: u32,
    // Kr, Kg, Kb, unused
    k: vec4<f32>,
    // Y scale, Y offset, C scale, unused (code values)
    scale: vec4<f32>,
};

@group(0) @binding(0) var src: texture_2d<f32>;
@group(0) @binding(1) var<storage, read_write> y_out: array<u32>;
@group(0) @binding(2) var<storage, read_write> uv_out: array<u32>;
@group(0) @binding(3) var<uniform> p: Params;

fn load_rgb(x: u32, y: u32) -> vec3<f32> {
    let cx = min(x, p.width - 1u);
    let cy = min(y, p.height - 1u);
    // Quantise to 8-bit code values first, as the CPU paths do for float inputs.
    return floor(clamp(textureLoad(src, vec2<u32>(cx, cy), 0).rgb, vec3<f32>(0.0), vec3<f32>(1.0)) * 255.0 + 0.5);
}

fn luma_code(rgb: vec3<f32>) -> f32 {
    let ey = dot(p.k.xyz, rgb / 255.0);
    return p.scale.y + p.scale.x * ey;
}

fn to_byte(v: f32) -> u32 {
    return u32(clamp(floor(v + 0.5), 0.0, 255.0));
}

@compute @workgroup_size(16, 8, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let bx = gid.x;
    let by = gid.y;
    if (bx >= p.words_per_row || by * 2u >= p.coded_height) {
        return;
    }
    let x0 = bx * 4u;
    let y0 = by * 2u;
    var rows: array<u32, 2>;
    var sums: array<vec3<f32>, 2>;
    sums[0] = vec3<f32>(0.0);
    sums[1] = vec3<f32>(0.0);
    for (var r = 0u; r < 2u; r = r + 1u) {
        var word = 0u;
        for (var c = 0u; c < 4u; c = c + 1u) {
            let rgb = load_rgb(x0 + c, y0 + r);
            word = word | (to_byte(luma_code(rgb)) << (8u * c));
            sums[c / 2u] = sums[c / 2u] + rgb;
        }
        rows[r] = word;
    }
    y_out[(y0) * p.words_per_row + bx] = rows[0];
    y_out[(y0 + 1u) * p.words_per_row + bx] = rows[1];
    var uv = 0u;
    for (var s = 0u; s < 2u; s = s + 1u) {
        let rgb = sums[s] / 4.0 / 255.0;
        let ey = dot(p.k.xyz, rgb);
        let cb = 128.0 + p.scale.z * (rgb.b - ey) / (2.0 * (1.0 - p.k.z));
        let cr = 128.0 + p.scale.z * (rgb.r - ey) / (2.0 * (1.0 - p.k.x));
        uv = uv | (to_byte(cb) << (16u * s)) | (to_byte(cr) << (16u * s + 8u));
    }
    uv_out[by * p.words_per_row + bx] = uv;
}
