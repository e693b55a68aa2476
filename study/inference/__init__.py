"""Using a trained model: predict emotions on photographs, folders and video, draw the paper's
3x3 figure, and export the model to SavedModel, TFLite or ONNX.

One module per role, each importable on its own:

* ``models``     MODEL (a run directory, a ``model.keras`` or a study name) -> a checked Keras model
* ``faces``      reading images, the Haar-cascade face finder, crops -> 48x48 grayscale
* ``predictor``  the classifier (batched) and the image pipeline: inputs -> one record per face
* ``drawing``    boxes and labels on annotated copies
* ``video``      frames of a file or a camera, faces tracked by IoU, labels smoothed per face
* ``grid``       the paper's Fig. 14/15: nine labelled images, true vs predicted
* ``saliency``   where models look: Grad-CAM (``study.saliency``) on one face per class, models side by side
* ``export``     SavedModel / TFLite / ONNX, each checked against the Keras model
* ``commands``   the ``predict`` and ``export`` click commands (``COMMANDS``)

Importing this package is cheap: TensorFlow and OpenCV load only when a command runs.
"""
