"""Arguments the every-method CLI tests give the methods that need some."""

# what a method cannot run without (everything else: its defaults)
METHOD_ARGS = {"feature-kd": {"student_layer": "1", "teacher_layer": "1"},
               "proto-kd": {"teacher_layer": "1"},
               "compose": {"objectives": [{"loss": "ce", "rows": "labeled"},
                                          {"loss": "kd", "weight": 0.5, "rows": "all"}]}}
