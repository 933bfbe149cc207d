"""Run a model through MediaPipe Tasks' ImageClassifier, as an Android or iOS app would, and print
every category's score for each image as JSON. Runs in its own environment (mediapipe needs
opencv-contrib-python, which must not replace the project's opencv-python-headless): no project
code is imported here.

    python tests/clients/mediapipe_classify.py MODEL IMAGE...
    python tests/clients/mediapipe_classify.py --metadata MODEL    # the metadata, read back

The metadata is read with the schema code MediaPipe ships (its metadata displayer needs a native
module this wheel lacks).
"""
import json
import sys

import mediapipe as mp
from mediapipe.tasks.metadata import metadata_schema_py_generated as metadata_schema
from mediapipe.tasks.metadata import schema_py_generated as model_schema
from mediapipe.tasks.python import BaseOptions
from mediapipe.tasks.python.vision import ImageClassifier, ImageClassifierOptions


def _text(value):
    return value.decode() if isinstance(value, bytes) else value


def _tensor(tensor) -> dict:
    content = tensor.content
    described = {"name": _text(tensor.name), "description": _text(tensor.description),
                 "content_type": content.contentPropertiesType,
                 "stats": {"min": tensor.stats.min.tolist(), "max": tensor.stats.max.tolist()},
                 "associated_files": [{"name": _text(f.name), "type": f.type}
                                      for f in tensor.associatedFiles or []]}
    properties = content.contentProperties
    if content.contentPropertiesType == metadata_schema.ContentProperties.ImageProperties:
        described["color_space"] = properties.colorSpace
        described["size"] = [properties.defaultSize.width, properties.defaultSize.height]
    return described


def metadata(path: str) -> dict:
    model = model_schema.Model.GetRootAsModel(open(path, "rb").read(), 0)
    for index in range(model.MetadataLength()):
        entry = model.Metadata(index)
        if entry.Name() == b"TFLITE_METADATA":
            data = model.Buffers(entry.Buffer()).DataAsNumpy().tobytes()
            break
    else:
        return {}
    assert metadata_schema.ModelMetadata.ModelMetadataBufferHasIdentifier(data, 0)
    root = metadata_schema.ModelMetadataT.InitFromObj(
        metadata_schema.ModelMetadata.GetRootAsModelMetadata(data, 0))
    subgraph = root.subgraphMetadata[0]
    return {"name": _text(root.name), "description": _text(root.description),
            "version": _text(root.version), "author": _text(root.author),
            "min_parser_version": _text(root.minParserVersion),
            "inputs": [_tensor(t) for t in subgraph.inputTensorMetadata],
            "outputs": [_tensor(t) for t in subgraph.outputTensorMetadata]}


def main() -> None:
    if sys.argv[1] == "--metadata":
        json.dump(metadata(sys.argv[2]), sys.stdout, indent=1)
        return
    model, images = sys.argv[1], sys.argv[2:]
    # every category, whatever its score: the per-class thresholds are applied by the caller
    options = ImageClassifierOptions(base_options=BaseOptions(model_asset_path=model),
                                     max_results=-1, score_threshold=0.0)
    results = []
    with ImageClassifier.create_from_options(options) as classifier:
        for path in images:
            classification = classifier.classify(mp.Image.create_from_file(path))
            head = classification.classifications[0]
            results.append({"image": path, "head": head.head_name, "categories": [
                {"index": c.index, "name": c.category_name, "score": c.score}
                for c in head.categories]})
    json.dump(results, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
