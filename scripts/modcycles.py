#!/usr/bin/env python3
# Usage: python3 scripts/modcycles.py venomqa/src   (exit 1 and the circles when there are any)
# A child module using its ancestors (super::) is not an edge; everything else is.
"""Module import graph of a crate's src/: edges from `crate::` paths (use trees included);
prints the strongly connected components with more than one module."""
import os, re, sys
root = sys.argv[1]
STRICT = "--strict" in sys.argv
mods = {}
for dp, _, fs in os.walk(root):
    for f in fs:
        if not f.endswith('.rs'): continue
        p = os.path.join(dp, f); rel = os.path.relpath(p, root)[:-3].split(os.sep)
        if rel[-1] in ('mod', 'lib'): rel = rel[:-1]
        if rel == ['private']: rel = ['__private']
        mods['::'.join(rel)] = p
def resolve(path):
    parts = path.split('::')
    for n in range(len(parts), 0, -1):
        m = '::'.join(parts[:n])
        if m in mods: return m
    return None
def expand(tree):
    # expand a use tree "a::{b, c::{d}}" into paths
    tree = tree.strip()
    i = tree.find('{')
    if i < 0: return [tree.split(' as ')[0].strip()]
    prefix = tree[:i]; inner = tree[i+1:tree.rfind('}')]
    out, depth, cur = [], 0, ''
    for ch in inner:
        if ch == ',' and depth == 0: out.append(cur); cur = ''; continue
        if ch == '{': depth += 1
        if ch == '}': depth -= 1
        cur += ch
    out.append(cur)
    res = []
    for o in out:
        if o.strip() in ('', 'self'): res.append(prefix.rstrip(':')); continue
        res += expand(prefix + o.strip())
    return res
edges = {m: set() for m in mods}
for m, p in mods.items():
    src = open(p).read()
    src = re.sub(r'//[^\n]*', '', src)
    paths = []
    for u in re.finditer(r'\buse\s+crate::([^;]+);', src, re.S):
        paths += expand(u.group(1))
    for u in re.finditer(r'\b(?:crate|super)::((?:[A-Za-z_][A-Za-z0-9_]*::)*[A-Za-z_][A-Za-z0-9_]*)', src):
        paths.append(u.group(1))
    for u in re.finditer(r'\bsuper::((?:[A-Za-z_][A-Za-z0-9_]*::)*[A-Za-z_][A-Za-z0-9_]*)', src):
        base = m.split('::')[:-1] if not p.endswith('mod.rs') else m.split('::')[:-1]
        paths.append('::'.join([x for x in base if x] + [u.group(1)]))
    if p.endswith('mod.rs') or p.endswith('lib.rs'):
        for child in [k for k in mods if k.startswith(m + '::' if m else '') and k.count('::') == (m.count('::') + 1 if m else 0)]:
            name = child.split('::')[-1]
            if re.search(r'(?<![A-Za-z0-9_:])' + re.escape(name) + r'::', src):
                paths.append(child)
    for path in paths:
        path = path.replace(' ', '').replace('\n', '')
        t = resolve(path)
        # a path into a submodule of m itself, or m's own items, is not an edge
        if t and t != m and (STRICT or not (m.startswith(t + "::") or t == "")) and m != "":
            edges[m].add(t)
# Tarjan
sys.setrecursionlimit(10000)
idx, low, on, st, sccs, c = {}, {}, set(), [], [], [0]
def sc(v):
    idx[v] = low[v] = c[0]; c[0] += 1; st.append(v); on.add(v)
    for w in edges[v]:
        if w not in idx: sc(w); low[v] = min(low[v], low[w])
        elif w in on: low[v] = min(low[v], idx[w])
    if low[v] == idx[v]:
        comp = []
        while True:
            w = st.pop(); on.discard(w); comp.append(w)
            if w == v: break
        if len(comp) > 1: sccs.append(sorted(comp))
for v in mods:
    if v not in idx: sc(v)
for comp in sccs:
    print(len(comp), 'modules in a circle:', ', '.join(comp))
    s = set(comp)
    for a in comp:
        for b in sorted(edges[a] & s): print('   ', a, '->', b)
if not sccs: print('no import circle')
sys.exit(1 if sccs else 0)
