"""Benchmark reports: ``hpml report`` (Markdown, self-contained HTML, PNG charts).

* :mod:`hpml.report.load` -- reading and validating runs and convergence records;
* :mod:`hpml.report.build` -- the sections: tables and which charts to draw;
* :mod:`hpml.report.charts` -- matplotlib charts (imported only when drawing);
* :mod:`hpml.report.render` -- the document model, Markdown and HTML writers;
* :mod:`hpml.report.command` -- argparse wiring: :func:`add_report_arguments`, :func:`run_report`.
"""

from hpml.report.command import add_report_arguments, run_report

__all__ = ["add_report_arguments", "run_report"]
