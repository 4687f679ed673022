/// What standardizing one exposition found that holds for every exposition of the same shape
/// (`PrometheusExposition.shape`): each rule's output series and which samples feed which
/// series. For the next scrape of the same shape only the values are folded again, in the
/// same order, so sums round as they did; there is no matching, no key building and no
/// hashing per sample. Kept per engine by `MetricsService` beside the parsed arrays.
struct StandardizerPlan: Sendable {
    let shape: UInt64
    let standardizer: UInt64
    /// Per rule, in the standardizer's order; nil for a rule no sample fed.
    var rules: [Rule?] = []

    struct Contribution: Sendable {
        var sample: Int32
        /// The series fed, or with duplicate labels the (series, partition) entry.
        var slot: Int32
        /// The slot's first sample: its value is taken as it is.
        var first: Bool
    }

    struct Rule: Sendable {
        /// The series as the fold made them: names and labels; values are replaced.
        var series: [MetricStandardizer.Series] = []
        var contributions: [Contribution] = []
        /// With duplicate labels: each partition entry's series.
        var partitionSeries: [Int32] = []
        /// A rule aggregated by `newest` takes a series' labels from the sample with the
        /// largest value, so it is folded again from its candidates each time.
        var candidates: [Int]?
    }

    func fits(_ exposition: PrometheusExposition, _ standardizer: MetricStandardizer) -> Bool {
        shape != 0 && shape == exposition.shape && self.standardizer == standardizer.id
    }
}
