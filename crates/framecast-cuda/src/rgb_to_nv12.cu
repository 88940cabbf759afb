// RGB(A) -> NV12 on CUDA, compiled at run time by NVRTC (framecast-cuda).
//
// One thread per 2x2 chroma site: it writes the site's (up to) four luma samples and one
// Cb/Cr pair. Reads outside the picture clamp to the last column/row (edge replication, as
// framecast-core's CPU paths do for odd sizes). Chroma is the 2x2 box average of the four
// pixels' 8-bit RGB code values, converted once. Float inputs are quantised to 8-bit code
// values first (clamp to 0..1, x255, round half up; NaN -> 0), exactly as the CPU does.
//
// Output: one buffer, `height` rows of Y then ceil(height/2) rows of interleaved CbCr, both
// with `pitch` bytes per row (pitch >= 2*ceil(width/2)).

#define FMT_RGB8 0
#define FMT_RGBA8 1
#define FMT_BGRA8 2
#define FMT_RGBA_F16 3
#define FMT_RGBA_F32 4

__device__ __forceinline__ float quantise(float v) {
    // fminf/fmaxf return the other operand for NaN, so NaN becomes 0 here.
    v = fminf(fmaxf(v, 0.0f), 1.0f);
    return floorf(v * 255.0f + 0.5f);
}

__device__ __forceinline__ float half_to_float(unsigned short h) {
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
    return f;
}

__device__ __forceinline__ float3 load_rgb(const unsigned char* src, long long pitch, int fmt,
                                           int x, int y) {
    const unsigned char* row = src + (long long)y * pitch;
    switch (fmt) {
    case FMT_RGB8: {
        const unsigned char* p = row + 3 * x;
        return make_float3(p[0], p[1], p[2]);
    }
    case FMT_RGBA8: {
        uchar4 p = reinterpret_cast<const uchar4*>(row)[x];
        return make_float3(p.x, p.y, p.z);
    }
    case FMT_BGRA8: {
        uchar4 p = reinterpret_cast<const uchar4*>(row)[x];
        return make_float3(p.z, p.y, p.x);
    }
    case FMT_RGBA_F16: {
        const unsigned short* p = reinterpret_cast<const unsigned short*>(row) + 4 * x;
        return make_float3(quantise(half_to_float(p[0])), quantise(half_to_float(p[1])),
                           quantise(half_to_float(p[2])));
    }
    default: {
        const float* p = reinterpret_cast<const float*>(row) + 4 * x;
        return make_float3(quantise(p[0]), quantise(p[1]), quantise(p[2]));
    }
    }
}

__device__ __forceinline__ unsigned char to_byte(float v) {
    return (unsigned char)fminf(fmaxf(floorf(v + 0.5f), 0.0f), 255.0f);
}

// k = (Kr, Kg, Kb); s = (Y scale, Y offset, C scale).
extern "C" __global__ void rgb_to_nv12(const unsigned char* src, long long src_pitch, int fmt,
                                       int width, int height, unsigned char* dst, int pitch,
                                       float kr, float kg, float kb, float ys, float yo,
                                       float cs) {
    int cx = blockIdx.x * blockDim.x + threadIdx.x;
    int cy = blockIdx.y * blockDim.y + threadIdx.y;
    int cw = (width + 1) / 2;
    int ch = (height + 1) / 2;
    if (cx >= cw || cy >= ch) {
        return;
    }
    float3 sum = make_float3(0.0f, 0.0f, 0.0f);
    for (int r = 0; r < 2; ++r) {
        int y = 2 * cy + r;
        int sy = min(y, height - 1);
        unsigned char luma[2];
        for (int c = 0; c < 2; ++c) {
            int sx = min(2 * cx + c, width - 1);
            float3 rgb = load_rgb(src, src_pitch, fmt, sx, sy);
            sum.x += rgb.x;
            sum.y += rgb.y;
            sum.z += rgb.z;
            float ey = (kr * rgb.x + kg * rgb.y + kb * rgb.z) / 255.0f;
            luma[c] = to_byte(yo + ys * ey);
        }
        if (y < height) {
            // The pad column of an odd width is inside the (even) pitch: it gets the
            // replicated edge sample.
            *reinterpret_cast<uchar2*>(dst + (long long)y * pitch + 2 * cx) =
                make_uchar2(luma[0], luma[1]);
        }
    }
    float r = sum.x / 4.0f / 255.0f;
    float g = sum.y / 4.0f / 255.0f;
    float b = sum.z / 4.0f / 255.0f;
    float ey = kr * r + kg * g + kb * b;
    float cb = 128.0f + cs * (b - ey) / (2.0f * (1.0f - kb));
    float cr = 128.0f + cs * (r - ey) / (2.0f * (1.0f - kr));
    unsigned char* uv = dst + (long long)height * pitch + (long long)cy * pitch + 2 * cx;
    *reinterpret_cast<uchar2*>(uv) = make_uchar2(to_byte(cb), to_byte(cr));
}
