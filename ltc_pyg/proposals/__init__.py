r"""Subgraphs cut out of the affinity graph as small PyG ``Data`` objects,
batched with :class:`~torch_geometric.data.Batch`: cluster proposals
(super-vertices), L-GCN pivot subgraphs and GCN-E candidate subgraphs."""

from ltc_pyg.proposals.candidates import (
    CandidateSelection,
    CandidateSubgraphs,
    pick_per_subgraph,
    select_candidates,
)
from ltc_pyg.proposals.dataset import ProposalGraphs
from ltc_pyg.proposals.pivot import (
    PivotSubgraphs,
    covering_pivots,
    nearest_others,
)
from ltc_pyg.proposals.super_vertex import (
    IterativeSetting,
    Proposals,
    ProposalSetting,
    SuperVertexProposals,
    generate_proposals,
)
from ltc_pyg.proposals.targets import ProposalTargets, proposal_targets

__all__: list[str] = []
__all__ += ['CandidateSelection', 'CandidateSubgraphs', 'pick_per_subgraph',
            'select_candidates']
__all__ += ['ProposalGraphs', 'IterativeSetting', 'ProposalSetting',
            'Proposals', 'SuperVertexProposals', 'generate_proposals',
            'ProposalTargets', 'proposal_targets']
__all__ += ['PivotSubgraphs', 'covering_pivots', 'nearest_others']
