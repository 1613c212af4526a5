"""``cexnode scan``: the node with trading off, a live table of the best routes and a closing report
(docs/scanner.md). depth: pricing a direction over two books; stats: samples and per-route totals;
table: the live terminal table; report: the closing report; main: the command."""
