"""Command line of the assignments: build, check, grade.

    python -m tinyresnet.assign build A1 [--out build/assign]
    python -m tinyresnet.assign check A1 [--dir FOLDER] [--part conv_backward ...]
    python -m tinyresnet.assign grade A1 SUBMISSIONS/ [--bundle DIR] [--out grades/A1] [--gradescope]

The ``tinyresnet`` console script forwards ``tinyresnet assign ...``, ``tinyresnet check ...`` and
``tinyresnet grade ...`` here.
"""
import argparse
import sys

__all__ = ["main", "make_parser"]


def make_parser(prog="python -m tinyresnet.assign"):
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Course assignments built from tinyresnet itself: build a student release, "
                    "check your work, grade submissions.")
    sub = parser.add_subparsers(dest="command", required=True)

    b = sub.add_parser("build", help="write the student release and the instructor bundle",
                       description="Write build/assign/<id>/student (package with stubs, notebook "
                                   "without outputs, public tests and reference data) and "
                                   "build/assign/<id>/instructor (all tests, template, solution).")
    b.add_argument("assignment", help="assignment id (A1, A2, A3) or its folder")
    b.add_argument("--out", help="output folder (default ./build/assign)")
    b.add_argument("--assignments", help="folder holding the assignment folders")

    c = sub.add_parser("check", help="run the public tests of your work, part by part",
                       description="Run the public tests of a student release and print, part by "
                                   "part, the points and a diagnosis of what is wrong.")
    c.add_argument("assignment", help="assignment id (A1, A2, A3)")
    c.add_argument("--dir", help="the release folder (default: the current folder, or ./<id>)")
    c.add_argument("--part", action="append", help="check only this part (repeatable)")

    g = sub.add_parser("grade", help="grade a folder of submissions",
                       description="Grade each zip or folder in SUBMISSIONS in its own subprocess "
                                   "with time limits; write grades.csv, one feedback file per "
                                   "submission and, optionally, Gradescope's results.json.")
    g.add_argument("assignment", help="assignment id (A1, A2, A3) or its folder")
    g.add_argument("submissions", help="folder of submissions (zip files or folders), or one")
    g.add_argument("--bundle", help="instructor bundle to use (default: build it now)")
    g.add_argument("--out", help="output folder (default ./grades/<id>)")
    g.add_argument("--gradescope", action="store_true", help="also write results.json files")
    g.add_argument("--time-limit", type=float, help="seconds per test case, for every part")
    g.add_argument("--assignments", help="folder holding the assignment folders")
    return parser


def main(argv=None, prog="python -m tinyresnet.assign"):
    """Parse ``argv`` (default sys.argv[1:]) and run; returns the exit status."""
    from .config import ConfigError
    from .grader import GradeError
    from .markers import MarkerError
    from .release import BuildError
    from .submission import SubmissionError

    args = make_parser(prog).parse_args(argv)
    try:
        if args.command == "build":
            from .release import build

            done = build(args.assignment, args.out, args.assignments)
            print(f"{done.assignment.id}: student release in {done.student}")
            print(f"{done.assignment.id}: instructor bundle in {done.instructor}")
        elif args.command == "check":
            from .checker import check

            check(args.assignment, args.dir, parts=args.part)
        else:
            from .grader import grade

            run = grade(args.assignment, args.submissions, bundle=args.bundle, out_dir=args.out,
                        gradescope=args.gradescope, assignments_dir=args.assignments,
                        time_limit_s=args.time_limit)
            if run.reference is not None:
                print(f"reference solution: {run.reference.score:g} / "
                      f"{run.reference.max_score:g} in this environment")
            for r in run.results:
                answered = f"  (written answers: {r.answers.summary()})" if r.answers.total else ""
                print(f"{r.name}: {r.score:g} / {r.max_score:g}{answered}")
            print(f"{len(run.results)} submissions graded: {run.csv_path}, feedback in "
                  f"{run.out_dir / 'feedback'}")
            # graded, but the class needs a look before the grades go out: exit status 1
            for line in run.problems:
                print(f"{prog} {args.command}: {' '.join(line.split())}", file=sys.stderr)
            if run.problems:
                return 1
    except (ConfigError, MarkerError, BuildError, SubmissionError, GradeError) as e:
        # one line, exit status 2: the convention of the tinyresnet command
        print(f"{prog} {args.command}: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    return 0
