# Derive polynomial coefficients for fl_math.h with mpmath (Chebyshev fit = near-minimax,
# then a few Remez-style checks of the resulting error after rounding coefficients to double).
import mpmath as mp
mp.mp.dps = 60
def fit(f, a, b, deg, name):
    poly, err = mp.chebyfit(f, [a, b], deg + 1, error=True)
    cs = [float(c) for c in poly[::-1]]  # ascending
    # error after rounding to double, evaluated in high precision
    xs = [a + (b - a) * mp.mpf(i) / 4000 for i in range(4001)]
    e = max(abs(sum(mp.mpf(c) * x**j for j, c in enumerate(cs)) - f(x)) / abs(f(x)) for x in xs)
    print(f"# {name}: deg {deg} on [{float(a):.6g},{float(b):.6g}] cheb err {mp.nstr(err,3)}, rel err after rounding {mp.nstr(e,3)} = 2^{float(mp.log(e,2)):.1f}")
    for j, c in enumerate(cs):
        print(f"#define {name}{j} {c.hex()} /* {c!r} */")
    return cs
h = mp.log(2) / 2
def cexp(r):
    if abs(r) < mp.mpf('1e-20'): return mp.mpf(1)/2 + r/6
    return (mp.exp(r) - 1 - r) / r**2
for d in (9, 10):
    fit(cexp, -h * 1.0001, h * 1.0001, d, f"FL_EXPC{d}_")
zmax = ((mp.sqrt(2) - 1) / (mp.sqrt(2) + 1)) ** 2 * 1.0001
def qlog(z):
    if z < mp.mpf('1e-30'): return mp.mpf(2)/3
    s = mp.sqrt(z)
    return (2 * mp.atanh(s) - 2 * s) / (s * z)
for d in (5, 6):
    fit(qlog, mp.mpf(0), zmax, d, f"FL_LOGQ{d}_")
print("# ln2 split")
import struct
ln2 = mp.log(2)
hi = float(ln2); b = struct.unpack('<Q', struct.pack('<d', hi))[0] & ~((1 << 21) - 1)
hi = struct.unpack('<d', struct.pack('<Q', b))[0]; lo = float(ln2 - hi)
print("ln2hi", hi.hex(), hi, "ln2lo", lo.hex(), lo)
print("log2e", float(1/ln2).hex())
