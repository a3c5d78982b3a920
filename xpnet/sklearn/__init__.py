"""A scikit-learn classifier: the two-layer network in pipelines and searches, on any array library.

:class:`TwoLayerClassifier` follows scikit-learn's conventions (``fit``, ``predict``,
``predict_proba``, ``score``, ``partial_fit``, ``get_params``, input validation by
scikit-learn's own helpers) and declares array API support: with
``sklearn.set_config(array_api_dispatch=True)``, it trains on the namespace and device
of ``X`` (torch on a GPU, CuPy, array-api-strict, ...), keeps its fitted parameters
there, and answers ``predict``/``predict_proba`` there too. Needs scikit-learn
(``pip install scikit-learn``; from a checkout, ``pip install ".[sklearn]"``)::

    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from xpnet.sklearn import TwoLayerClassifier

    model = make_pipeline(StandardScaler(), TwoLayerClassifier(hidden_size=256))
    model.fit(X_train, y_train).score(X_test, y_test)

The estimator is :mod:`xpnet.sklearn._estimator`; its hyperparameters are made from
the table in :mod:`xpnet.hyperparameters` (:mod:`~xpnet.sklearn._parameters`), its
early stopping is :mod:`~xpnet.sklearn._stopping`, and where its arrays live under
array API dispatch, :mod:`~xpnet.sklearn._dispatch`.
"""

from xpnet.sklearn._estimator import TwoLayerClassifier

__all__ = ["TwoLayerClassifier"]
