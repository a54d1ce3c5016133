"""Study builders shared by the search tests."""


def synthetic_study(name="synth", *, space=None, objectives=None, optimizer="grid", budget=None, seed=0,
                    evaluator=None, constraints=None):
    from infersim.search import study_from_dict

    data = {
        "name": name,
        "evaluator": evaluator or {"kind": "synthetic", "options": {"optimum": {"x": 3, "y": 0.25, "c": "b"}}},
        "workload": {"input_tokens": 1, "output_tokens": 1},
        "space": space or {"x": {"type": "int", "low": 0, "high": 9}, "c": ["a", "b", "c"]},
        "objectives": objectives or [{"min": "f"}],
        "optimizer": optimizer,
        "seed": seed,
    }
    if budget is not None:
        data["budget"] = budget
    if constraints is not None:
        data["constraints"] = constraints
    return study_from_dict(data, "<test>")
