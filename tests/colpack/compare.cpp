// tests/colpack/compare.cpp -- tapegen's colourings against ColPack's, the
// reference implementation [Gebremedhin, Tarafdar, Pothen & Walther,
// "Efficient computation of sparse Hessians using coloring and automatic
// differentiation", INFORMS J. Computing 21(2), 2009].  Built only where
// ColPack is installed (Debian libcolpack-dev); this program is the only
// C++ in the project and links ColPack, never the library itself.
//
// For every pattern (taken from tapegen's own tg_*_sparsity, so both sides
// colour the same graph) it prints tapegen's colour count and ColPack's best
// over its orderings (NATURAL, LARGEST_FIRST, SMALLEST_LAST,
// INCIDENCE_DEGREE, and DYNAMIC_LARGEST_FIRST for Hessians): STAR colouring,
// Jacobians by the better of COLUMN_ and ROW_PARTIAL_DISTANCE_TWO.  It fails
// when tapegen needs more than ColPack's best plus a margin of
// max(1, 10%) colours (greedy colourings depend on the vertex order; the
// margin is stated in the output).
#include <ColPack/ColPackHeaders.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <tapegen.h>

#include "patterns.h"

using namespace ColPack;

static const char *orderings[] = { "NATURAL", "LARGEST_FIRST", "SMALLEST_LAST",
                                   "INCIDENCE_DEGREE", "DYNAMIC_LARGEST_FIRST" };
// the bipartite (Jacobian) colourings know no DYNAMIC_LARGEST_FIRST
static const char *orderings_d2[] = { "NATURAL", "LARGEST_FIRST", "SMALLEST_LAST",
                                      "INCIDENCE_DEGREE" };

// ADOL-C's row-compressed format: row r = { count, col_1, ..., col_count }
struct adolc_pattern {
    std::vector<std::vector<unsigned>> rows;
    std::vector<unsigned *> ptr;
    unsigned **get()
    {
        ptr.clear();
        for (auto &r : rows)
            ptr.push_back(r.data());
        return ptr.data();
    }
};

static adolc_pattern
from_sparsity(const tg_sparsity *s, size_t nrows, bool symmetric)
{
    std::vector<std::vector<unsigned>> cols(nrows);
    const uint32_t *R = tg_sparsity_rows(s), *C = tg_sparsity_cols(s);
    for (size_t e = 0; e < tg_sparsity_nnz(s); e++) {
        cols[R[e]].push_back(C[e]);
        if (symmetric && R[e] != C[e])
            cols[C[e]].push_back(R[e]);
    }
    adolc_pattern p;
    for (auto &c : cols) {
        std::vector<unsigned> row{ (unsigned)c.size() };
        row.insert(row.end(), c.begin(), c.end());
        p.rows.push_back(row);
    }
    return p;
}

static int
colpack_star(const tg_sparsity *s, size_t n)
{
    int best = -1;
    for (const char *o : orderings) {
        adolc_pattern p = from_sparsity(s, n, true);
        GraphColoringInterface g(SRC_MEM_ADOLC, p.get(), (int)n);
        g.Coloring(o, "STAR");
        int c = g.GetVertexColorCount();
        if (c > 0)
            best = best < 0 || c < best ? c : best;
    }
    return best;
}

static int
colpack_d2(const tg_sparsity *s, size_t m, size_t n)
{
    int best = -1;
    for (const char *o : orderings_d2)
        for (const char *v : { "COLUMN_PARTIAL_DISTANCE_TWO", "ROW_PARTIAL_DISTANCE_TWO" }) {
            adolc_pattern p = from_sparsity(s, m, false);
            BipartiteGraphPartialColoringInterface g(SRC_MEM_ADOLC, p.get(), (int)m, (int)n);
            g.PartialDistanceTwoColoring(o, v);
            int c = g.GetVertexColorCount();
            if (c > 0)
                best = best < 0 || c < best ? c : best;
        }
    return best;
}

static int failures = 0;

static void
compare(const char *name, tg_tape *t, bool hessian)
{
    if (tg_tape_status(t) != TG_OK) {
        std::printf("FAIL %s: tape: %s\n", name, tg_tape_error(t));
        failures++;
        return;
    }
    size_t n = tg_num_inputs(t), m = tg_num_outputs(t);
    tg_sparsity *s = hessian ? tg_hessian_sparsity(t, TG_ALL) : tg_jacobian_sparsity(t, TG_ALL);
    if (!s || tg_sparsity_status(s) != TG_OK) {
        std::printf("FAIL %s: sparsity: %s\n", name, tg_sparsity_error(s));
        failures++;
        tg_sparsity_free(s);
        return;
    }
    int ours = (int)tg_sparsity_colors(s);
    int ref = hessian ? colpack_star(s, n) : colpack_d2(s, m, n);
    int margin = std::max(1, (int)std::ceil(0.1 * ref));
    bool ok = ours <= ref + margin;
    std::printf("%-4s %-34s nnz %8zu  tapegen %4d  ColPack %4d  %s\n", ok ? "ok" : "FAIL", name,
                tg_sparsity_nnz(s), ours, ref, ours < ref ? "(fewer)" : ours == ref ? "(equal)" : "(within margin)");
    failures += !ok;
    tg_sparsity_free(s);
}

// ---------------------------------------------------------------- patterns

// pattern tapes from C (the operation macros are C11): patterns.c
static tg_tape *
from_pairs(const std::vector<std::pair<size_t, size_t>> &pairs, size_t n)
{
    std::vector<size_t> a, b;
    for (auto &p : pairs)
        a.push_back(p.first), b.push_back(p.second);
    return cp_from_pairs(n, pairs.size(), a.data(), b.data());
}

static tg_tape *
from_rows(const std::vector<std::vector<size_t>> &rows, size_t n)
{
    std::vector<size_t> ptr{ 0 }, cols;
    for (auto &r : rows) {
        cols.insert(cols.end(), r.begin(), r.end());
        ptr.push_back(cols.size());
    }
    return cp_from_rows(n, rows.size(), ptr.data(), cols.data());
}

static uint64_t rng_state = 12345;
static size_t
below(size_t n)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (size_t)((rng_state >> 33) % n);
}

int
main()
{
    std::setvbuf(stdout, nullptr, _IONBF, 0);
    std::printf("margin: tapegen may need max(1, ceil(10%%)) colours more than ColPack's best ordering\n");
    tg_tape *t = cp_rosenbrock(1000);
    compare("W1 rosenbrock n=1000 hessian", t, true);
    tg_tape_free(t);
    t = cp_broyden(1000);
    compare("W4 broyden n=1000 jacobian", t, false);
    tg_tape_free(t);

    for (size_t bw : { 2, 3, 5 }) {                 // banded Hessians
        std::vector<std::pair<size_t, size_t>> pairs;
        size_t n = 400;
        for (size_t i = 0; i < n; i++)
            for (size_t k = 0; k <= bw && i + k < n; k++)
                pairs.push_back({ i, i + k });
        t = from_pairs(pairs, n);
        std::string name = "banded hessian bandwidth " + std::to_string(bw);
        compare(name.c_str(), t, true);
        tg_tape_free(t);
    }
    {                                               // arrowhead Hessian
        std::vector<std::pair<size_t, size_t>> pairs;
        size_t n = 300;
        for (size_t i = 0; i < n; i++)
            pairs.push_back({ 0, i }), pairs.push_back({ i, i });
        t = from_pairs(pairs, n);
        compare("arrowhead hessian n=300", t, true);
        tg_tape_free(t);
    }
    for (int k = 0; k < 6; k++) {                   // random sparse Hessians
        size_t n = 200 + 100 * (size_t)k, per = 2 + (size_t)k;
        std::vector<std::pair<size_t, size_t>> pairs;
        for (size_t i = 0; i < n; i++)
            for (size_t q = 0; q < per; q++)
                pairs.push_back({ i, below(n) });
        t = from_pairs(pairs, n);
        std::string name = "random hessian n=" + std::to_string(n) + " deg~" + std::to_string(2 * per);
        compare(name.c_str(), t, true);
        tg_tape_free(t);
    }
    for (int k = 0; k < 6; k++) {                   // random sparse Jacobians
        size_t n = 300, m = 150 + 100 * (size_t)k, per = 2 + (size_t)k;
        std::vector<std::vector<size_t>> rows(m);
        for (auto &r : rows)
            for (size_t q = 0; q < per; q++)
                r.push_back(below(n));
        t = from_rows(rows, n);
        std::string name = "random jacobian " + std::to_string(m) + "x" + std::to_string(n) +
                           " row~" + std::to_string(per);
        compare(name.c_str(), t, false);
        tg_tape_free(t);
    }
    {                                               // banded and arrowhead Jacobians
        size_t n = 400;
        std::vector<std::vector<size_t>> rows(n);
        for (size_t i = 0; i < n; i++) {
            for (size_t k = 0; k < 5; k++)
                if (i + k >= 2 && i + k - 2 < n)
                    rows[i].push_back(i + k - 2);
            rows[i].push_back(0);
        }
        t = from_rows(rows, n);
        compare("banded+first column jacobian", t, false);
        tg_tape_free(t);
    }
    std::printf("%s\n", failures ? "FAILED" : "all within the margin");
    return failures ? 1 : 0;
}
