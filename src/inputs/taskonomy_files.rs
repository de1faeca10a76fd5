// The embedded Taskonomy sample (generated from data/images/taskonomy).
[
    ("point_0_view_0_domain_rgb.png", include_bytes!("../../data/images/taskonomy/point_0_view_0_domain_rgb.png").as_slice()),
    ("point_0_view_2_domain_rgb.png", include_bytes!("../../data/images/taskonomy/point_0_view_2_domain_rgb.png").as_slice()),
    ("point_1000_view_2_domain_rgb.png", include_bytes!("../../data/images/taskonomy/point_1000_view_2_domain_rgb.png").as_slice()),
    ("point_1002_view_4_domain_rgb.png", include_bytes!("../../data/images/taskonomy/point_1002_view_4_domain_rgb.png").as_slice()),
    ("point_1004_view_0_domain_rgb.png", include_bytes!("../../data/images/taskonomy/point_1004_view_0_domain_rgb.png").as_slice()),
    ("point_1005_view_0_domain_rgb.png", include_bytes!("../../data/images/taskonomy/point_1005_view_0_domain_rgb.png").as_slice()),
    ("point_1006_view_6_domain_rgb.png", include_bytes!("../../data/images/taskonomy/point_1006_view_6_domain_rgb.png").as_slice()),
    ("point_1006_view_8_domain_rgb.png", include_bytes!("../../data/images/taskonomy/point_1006_view_8_domain_rgb.png").as_slice()),
]
