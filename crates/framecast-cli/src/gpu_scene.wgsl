// `framecast demo --gpu`: a moving plasma with orbiting rings, rendered by a compute shader
// straight into the RGBA texture that framecast then converts on the same device.

struct Params {
    size: vec2<u32>,
    t: f32,
    _pad: f32,
};

@group(0) @binding(0) var out: texture_storage_2d<rgba8unorm, write>;
@group(0) @binding(1) var<uniform> p: Params;

@compute @workgroup_size(16, 16, 1)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    if (id.x >= p.size.x || id.y >= p.size.y) {
        return;
    }
    let aspect = f32(p.size.x) / f32(p.size.y);
    let uv = vec2<f32>(id.xy) / vec2<f32>(p.size) * vec2<f32>(aspect, 1.0);
    let t = p.t;
    var v = sin(uv.x * 9.0 + t) + sin((uv.y * 7.0 + t) * 0.7);
    v += sin((uv.x * 6.0 + uv.y * 8.0 + t) * 0.5);
    let c = uv * 8.0 - vec2<f32>(4.0 * aspect + 3.0 * sin(t / 3.0), 4.0 + 3.0 * cos(t / 2.0));
    v += sin(length(c) * 2.0 + t);
    var rgb = vec3<f32>(sin(v * 3.14159), sin(v * 3.14159 + 2.094), sin(v * 3.14159 + 4.188)) * 0.5 + 0.5;
    // Two rings orbiting the centre: sharp edges for the encoder to keep.
    for (var i = 0; i < 2; i = i + 1) {
        let a = t * (0.8 + 0.4 * f32(i)) + 3.14159 * f32(i);
        let centre = vec2<f32>(0.5 * aspect + 0.3 * cos(a), 0.5 + 0.3 * sin(a));
        let d = abs(length(uv - centre) - 0.08);
        rgb = mix(rgb, vec3<f32>(1.0), smoothstep(0.012, 0.006, d));
    }
    textureStore(out, vec2<i32>(id.xy), vec4<f32>(rgb, 1.0));
}
