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


# fl_exp_short (float32 results): c(r) of degree 6 in e^r = 1 + r + r^2 c(r), near-minimax
# for the RELATIVE error of e^r (not of c) on |r| <= ln2/2: Lawson-weighted least squares at
# 400 Chebyshev nodes, mpmath at 200 bits; then the error with the coefficients rounded to
# double on 4001 points (fl_math.h: 2^-39.68).
def exp_short(deg=6, nodes=400, rounds=30):
    with mp.workprec(200):
        a = mp.log(2) / 2
        xs = [a * mp.cos(mp.pi * (k + mp.mpf(1) / 2) / nodes) for k in range(nodes)]
        w = [mp.mpf(1)] * nodes
        for _ in range(rounds):
            A = mp.matrix(nodes, deg + 1)
            rhs = mp.matrix(nodes, 1)
            for i, x in enumerate(xs):
                sc = x ** 2 / mp.exp(x) * w[i]
                for j in range(deg + 1):
                    A[i, j] = sc * x ** j
                rhs[i] = sc * cexp(x)
            coef = mp.qr_solve(A, rhs)[0]
            errs = [abs((sum(coef[j] * x ** j for j in range(deg + 1)) - cexp(x)) * x ** 2 / mp.exp(x))
                    for x in xs]
            top = max(errs)
            w = [w[i] * (errs[i] / top) ** 0.5 + mp.mpf(10) ** -30 for i in range(nodes)]
        cs = [float(c) for c in coef]
        worst = max(abs((1 + x + x ** 2 * sum(mp.mpf(c) * x ** j for j, c in enumerate(cs))) / mp.exp(x) - 1)
                    for x in [a * (2 * mp.mpf(i) / 4000 - 1) for i in range(4001)])
    print(f"# fl_exp_short: c of degree {deg}, relative error of e^r after rounding 2^{float(mp.log(worst, 2)):.2f}")
    for j, c in enumerate(cs):
        print(f"#define FL_EXPS{j} {c.hex()} /* {c!r} */")


exp_short()
