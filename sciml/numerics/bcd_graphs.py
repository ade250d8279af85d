"""Message passing for block coordinate descent on sparse quadratics (spec optim_numerics 4.2): exact block solves by
Gaussian belief propagation on forest blocks, and the graph partitions that make every block a forest.

* :func:`gabp_solve`: ``Q x = c`` for a symmetric positive definite ``Q`` whose sparsity graph is a forest, one
  upward and one downward sweep; a cyclic graph raises (spec 4.6: GaBP on a cycle silently gives wrong answers).
* :func:`red_black_partition`: the 2-colouring of a bipartite sparsity graph (a lattice): each colour class is an
  independent set, so its block ``Q_bb`` is diagonal (a forest without edges).
* :func:`forest_partition`: the "tree" partition: nodes taken in index order join the first block in which they
  close no cycle (union-find per block), so every block induces a forest; on a lattice numbered column by column
  this gives two forests (a comb and a set of paths), the spec's tree partition.
"""

from __future__ import annotations

import torch

from sciml.numerics._tensors import as_dense_tensor


def _forest_levels(n: int, edges: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Parent (-1 at roots) and depth of every node of an undirected forest given as ``edges`` (E, 2), by a
    level-synchronous BFS over the edge list. Raises ValueError when the graph has a cycle (E != n - components)."""
    device = edges.device
    parent = torch.full((n,), -1, dtype=torch.long, device=device)
    depth = torch.full((n,), -1, dtype=torch.long, device=device)
    both = torch.cat([edges, edges.flip(1)])                              # directed both ways (2E, 2)
    components = 0
    while bool((depth < 0).any()):
        root = int(torch.nonzero(depth < 0)[0])
        components += 1
        depth[root] = 0
        frontier = torch.zeros(n, dtype=torch.bool, device=device)
        frontier[root] = True
        level = 0
        while bool(frontier.any()):
            step = both[frontier[both[:, 0]] & (depth[both[:, 1]] < 0)]      # frontier -> unvisited
            level += 1
            frontier = torch.zeros_like(frontier)
            if step.numel():
                parent[step[:, 1]] = step[:, 0]
                depth[step[:, 1]] = level
                frontier[step[:, 1]] = True
    if edges.shape[0] != n - components:
        raise ValueError(f"GaBP needs a forest (acyclic) sparsity graph: {edges.shape[0]} edges on {n} nodes in "
                         f"{components} components means a cycle (spec 4.6: GaBP on a cyclic block is wrong)")
    return parent, depth


class ForestGaBP:
    """Gaussian belief propagation for ``Q x = c`` when the sparsity graph of the symmetric positive definite ``Q``
    is a forest (spec 4.2: one upward and one downward sweep, O(n) messages). A cyclic graph raises.

    Messages (i -> parent p): precision ``-Q_ip^2 / P_i\\p``, potential ``-Q_ip h_i\\p / P_i\\p``, where
    ``P_i\\p, h_i\\p`` are node i's precision and potential without p's message; then the same from the root down.
    The precisions do not depend on ``c``: they are computed once here, so repeated solves with one block (BCD)
    cost only the potential sweeps."""

    def __init__(self, Q) -> None:
        Q = as_dense_tensor(Q, "Q")
        n = Q.shape[0]
        if Q.dim() != 2 or Q.shape[1] != n:
            raise ValueError(f"Q must be square, got shape {tuple(Q.shape)}")
        if not torch.allclose(Q, Q.T, rtol=1e-10, atol=0.0) or not bool((torch.diagonal(Q) > 0).all()):
            raise ValueError("Q must be symmetric with a positive diagonal")
        self.n, self.dtype, self.device = n, Q.dtype, Q.device
        parent, depth = _forest_levels(n, torch.nonzero(torch.triu(Q, 1) != 0))
        self.parent = parent
        self.levels = [torch.nonzero(depth == level).reshape(-1) for level in range(int(depth.max()) + 1)]
        self.q_parent = torch.zeros(n, dtype=Q.dtype, device=Q.device)
        has_parent = parent >= 0
        self.q_parent[has_parent] = Q[has_parent.nonzero().reshape(-1), parent[has_parent]]
        # Upward precisions (leaves first), then the full precisions from the roots down.
        diag = torch.diagonal(Q)
        up_P = torch.zeros_like(diag)
        self.P_excl = torch.zeros_like(diag)                    # node's precision without its parent's message
        for nodes in self.levels[:0:-1]:
            self.P_excl[nodes] = diag[nodes] + up_P[nodes]
            if not bool((self.P_excl[nodes] > 0).all()):
                raise ValueError("GaBP met a non-positive precision: Q is not positive definite")
            up_P.index_add_(0, parent[nodes], -self.q_parent[nodes].pow(2) / self.P_excl[nodes])
        self.full_P = diag + up_P
        self.P_parent_excl = torch.zeros_like(diag)             # parent's precision without this node's message
        for nodes in self.levels[1:]:
            p = parent[nodes]
            self.P_parent_excl[nodes] = self.full_P[p] + self.q_parent[nodes].pow(2) / self.P_excl[nodes]
            self.full_P[nodes] = self.full_P[nodes] - self.q_parent[nodes].pow(2) / self.P_parent_excl[nodes]
        if not bool((self.full_P > 0).all()):
            raise ValueError("GaBP met a non-positive precision: Q is not positive definite")

    def solve(self, c) -> torch.Tensor:
        c = as_dense_tensor(c, "c", self.dtype, self.device).reshape(-1)
        if c.numel() != self.n:
            raise ValueError(f"c has {c.numel()} entries, Q is {self.n} x {self.n}")
        up_h = torch.zeros_like(c)
        msg_h = torch.zeros_like(c)                               # potential message node -> its parent
        for nodes in self.levels[:0:-1]:
            msg_h[nodes] = -self.q_parent[nodes] * (c[nodes] + up_h[nodes]) / self.P_excl[nodes]
            up_h.index_add_(0, self.parent[nodes], msg_h[nodes])
        full_h = c + up_h
        for nodes in self.levels[1:]:
            h_parent_excl = full_h[self.parent[nodes]] - msg_h[nodes]
            full_h[nodes] = full_h[nodes] - self.q_parent[nodes] * h_parent_excl / self.P_parent_excl[nodes]
        return full_h / self.full_P


def gabp_solve(Q, c) -> torch.Tensor:
    """Solve ``Q x = c`` exactly by Gaussian belief propagation on a forest sparsity graph (see
    :class:`ForestGaBP`); a cyclic graph raises ValueError."""
    return ForestGaBP(Q).solve(c)


def _edges(Q: torch.Tensor) -> torch.Tensor:
    """Undirected edges (E, 2), i < j, of the sparsity graph of a square ``Q``."""
    if Q.dim() != 2 or Q.shape[0] != Q.shape[1]:
        raise ValueError(f"Q must be square, got shape {tuple(Q.shape)}")
    return torch.nonzero(torch.triu(Q, 1) != 0)


def _bfs_depth(n: int, edges: torch.Tensor) -> torch.Tensor:
    """Breadth-first depth of every node from the first node of its component (level-synchronous, vectorised)."""
    depth = torch.full((n,), -1, dtype=torch.long, device=edges.device)
    both = torch.cat([edges, edges.flip(1)])
    while bool((depth < 0).any()):
        root = int(torch.nonzero(depth < 0)[0])
        depth[root] = 0
        frontier = torch.zeros(n, dtype=torch.bool, device=edges.device)
        frontier[root] = True
        level = 0
        while bool(frontier.any()):
            step = both[frontier[both[:, 0]] & (depth[both[:, 1]] < 0)]
            level += 1
            frontier = torch.zeros_like(frontier)
            frontier[step[:, 1]] = True
            depth[step[:, 1]] = level
    return depth


def red_black_partition(Q) -> list[torch.Tensor]:
    """The two colour classes of the sparsity graph of ``Q`` (raises ValueError when it is not bipartite)."""
    Q = as_dense_tensor(Q, "Q")
    edges = _edges(Q)
    colour = _bfs_depth(Q.shape[0], edges) % 2
    if edges.numel() and bool((colour[edges[:, 0]] == colour[edges[:, 1]]).any()):
        raise ValueError("red-black partition needs a bipartite sparsity graph (e.g. a lattice); this graph has an "
                         "odd cycle: use partition='tree'")
    return [torch.nonzero(colour == c).reshape(-1) for c in (0, 1) if bool((colour == c).any())]


def forest_partition(Q) -> list[torch.Tensor]:
    """Greedy partition of the nodes into blocks that each induce a forest (module docstring). The loop over nodes
    is sequential by nature (each choice depends on the previous ones); union-find keeps it near-linear."""
    Q = as_dense_tensor(Q, "Q")
    n = Q.shape[0]
    edges = _edges(Q).tolist()
    neighbours: list[list[int]] = [[] for _ in range(n)]
    for i, j in edges:
        neighbours[i].append(j)
        neighbours[j].append(i)
    parent = list(range(n))                       # one union-find over all nodes; blocks never share a component

    def root(v: int) -> int:
        while parent[v] != v:
            parent[v] = parent[parent[v]]
            v = parent[v]
        return v

    block_of = [-1] * n
    n_blocks = 0
    for v in range(n):
        b = 0
        while True:
            roots = [root(u) for u in neighbours[v] if block_of[u] == b]
            if len(roots) == len(set(roots)):      # v joins without closing a cycle in block b
                break
            b += 1
        block_of[v] = b
        n_blocks = max(n_blocks, b + 1)
        for r in roots:
            parent[r] = v
    labels = torch.tensor(block_of)
    return [torch.nonzero(labels == b).reshape(-1).to(Q.device) for b in range(n_blocks)]
