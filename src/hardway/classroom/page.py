"""The class report as one self-contained HTML page to project: no external files, sortable
by any column, each cell's reason and hint on hover and, on click, in a panel."""

from __future__ import annotations

import time
from html import escape

from hardway.classroom.report import Report
from hardway.labs import by_part

# Sort order of a lab column: furthest along first.
RANK = {"pass": 0, "fail": 1, "skipped": 2, "unreachable": 3, "not reached": 4}
SYMBOL = {"pass": "✔ pass", "fail": "✘ fail", "skipped": "↷ skipped", "unreachable": "⚠ unreachable",
          "not reached": "·"}

STYLE = """
body { font: 16px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #1b1b1b; }
h1 { font-size: 1.5rem; margin: 0 0 .25rem; }
p.meta { color: #555; margin: 0 0 1rem; }
table { border-collapse: collapse; }
th, td { border: 1px solid #ccc; padding: .35rem .6rem; text-align: center; white-space: nowrap; }
th { background: #f0f0f0; cursor: pointer; user-select: none; }
tr.parts th { cursor: default; font-weight: 600; border-bottom: 2px solid #999; }
th[aria-sort=ascending]::after { content: " ▲"; }
th[aria-sort=descending]::after { content: " ▼"; }
td.student { text-align: left; font-weight: 600; }
td.pass { background: #d8f5d8; }
td.fail { background: #ffd6d6; cursor: pointer; font-weight: 600; }
td.skipped { background: #fff1c2; cursor: pointer; }
td.unreachable { background: #e4e4e4; cursor: pointer; }
td.not-reached { color: #999; }
tfoot td { background: #fafafa; font-size: .9rem; }
#detail { margin-top: 1rem; padding: .75rem 1rem; border-left: 4px solid #c00; background: #fff6f6;
          max-width: 60rem; white-space: normal; }
#detail[hidden] { display: none; }
"""

SCRIPT = """
const table = document.getElementById('report');
const body = table.tBodies[0];
const columns = table.querySelectorAll('thead tr:last-child th');
columns.forEach((th, index) => {
  th.addEventListener('click', () => {
    const ascending = th.getAttribute('aria-sort') !== 'ascending';
    columns.forEach(other => other.removeAttribute('aria-sort'));
    th.setAttribute('aria-sort', ascending ? 'ascending' : 'descending');
    const key = row => row.cells[index].dataset.sort;
    const rows = Array.from(body.rows).sort((a, b) => {
      const x = key(a), y = key(b);
      const order = isNaN(x) || isNaN(y) ? x.localeCompare(y) : Number(x) - Number(y);
      return ascending ? order : -order;
    });
    rows.forEach(row => body.appendChild(row));
  });
});
const detail = document.getElementById('detail');
body.addEventListener('click', event => {
  const cell = event.target.closest('td[data-reason]');
  if (!cell) return;
  detail.querySelector('.what').textContent = cell.dataset.what;
  detail.querySelector('.reason').textContent = cell.dataset.reason;
  detail.querySelector('.hint').textContent = cell.dataset.hint;
  detail.hidden = false;
});
"""


def render(report: Report, refresh: int | None = None) -> str:
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(report.generated))
    # A row of part titles above the lab ids: each part is a column group.
    groups = ['<th colspan="3" class="part"></th>'] + [
        f'<th colspan="{len(members)}" class="part" scope="colgroup">{escape(part.title)}</th>'
        for part, members in by_part(report.labs)]
    head = ['<th>Student</th>', '<th>At lab</th>', '<th>Passed</th>']
    head += [f'<th title="{escape(lab.title)}">{escape(lab.id)}</th>' for lab in report.labs]
    rows = []
    for row in report.students:
        passes = sum(1 for cell in row.labs.values() if cell.status == "pass")
        down = [f"{name}: {state}" for name, state in row.machines.items() if state != "ok"]
        name_title = f' title="{escape("; ".join(down))}"' if down else ""
        cells = [f'<td class="student" data-sort="{escape(row.student)}"{name_title}>'
                 f'{escape(row.student)}{" ⚠" if down else ""}</td>',
                 f'<td data-sort="{escape(row.current or "00")}">{escape(row.current or "–")}</td>',
                 f'<td data-sort="{passes}">{passes}</td>']
        for lab in report.labs:
            cell = row.labs[lab.id]
            css = cell.status.replace(" ", "-")
            extra = ""
            if cell.reason:
                what = f"{row.student}, lab {lab.id} ({lab.title}): {cell.status}" + (
                    f" on {cell.machine}" if cell.machine else "")
                tip = cell.reason + (f"\nHint: {cell.hint}" if cell.hint else "")
                extra = (f' title="{escape(tip)}" data-what="{escape(what)}"'
                         f' data-reason="{escape(cell.reason)}" data-hint="{escape(cell.hint)}"')
            cells.append(f'<td class="{css}" data-lab="{escape(lab.id)}" data-status="{escape(cell.status)}"'
                         f' data-sort="{RANK[cell.status]}"{extra}>{SYMBOL[cell.status]}</td>')
        rows.append(f'<tr data-student="{escape(row.student)}">{"".join(cells)}</tr>')
    counts = report.counts()
    foot = ['<td>passed</td><td></td><td></td>'] + [
        f'<td>{counts[lab.id]["pass"]}/{len(report.students)}</td>' for lab in report.labs]
    meta_refresh = f'<meta http-equiv="refresh" content="{int(refresh)}">' if refresh else ""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
{meta_refresh}
<title>{escape(report.name)}: lab progress</title>
<style>{STYLE}</style>
</head>
<body>
<h1>{escape(report.name)}: lab progress</h1>
<p class="meta">Checked {escape(when)} on every student's machines. Click a column to sort;
click a red, yellow or grey cell for the reason and the hint.</p>
<table id="report">
<thead><tr class="parts">{"".join(groups)}</tr><tr>{"".join(head)}</tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody>
<tfoot><tr>{"".join(foot)}</tr></tfoot>
</table>
<div id="detail" hidden><strong class="what"></strong><p class="reason"></p>
<p>Hint: <span class="hint"></span></p></div>
<script>{SCRIPT}</script>
</body>
</html>
"""
