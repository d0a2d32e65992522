"""The log's side of witnessing: the witnesses members register and the policy the
consortium adopts (projections of their entries, written for the domain's appliers
through ``ledger.services``), the collection of cosignatures after each checkpoint
(``collect``), and the newest checkpoint that meets the policy (``served``).

Who may register a witness or adopt a policy is the governance layer's to say; this
package only keeps what the entries say and talks to the witnesses (C2SP tlog-witness
v1.0.0, cosignatures per C2SP tlog-cosignature).
"""
